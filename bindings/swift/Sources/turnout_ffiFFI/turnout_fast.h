// The hot typed getters of ffi/src/fast.rs: plain C functions that borrow the
// handles of a UniFFI Context and Variable (obtained with uniffiCloneHandle()
// and released with uniffi_turnout_ffi_fn_free_context/_variable). They never
// fail: a null handle or any internal error gives the caller's default.
// `cargo xtask swift` checks that every function here exists in fast.rs.
#ifndef TURNOUT_FAST_H
#define TURNOUT_FAST_H

#include <stdint.h>

int64_t turnout_fast_int64(uint64_t ctx, uint64_t var, int64_t default_value);
double turnout_fast_float64(uint64_t ctx, uint64_t var, double default_value);
int8_t turnout_fast_bool(uint64_t ctx, uint64_t var, int8_t default_value);

#endif
