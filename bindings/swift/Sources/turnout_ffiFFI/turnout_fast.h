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

// A one-shot decision from facets as JSON text, written into `out` as
// UniFFI's serialised Decision record; returns its length (nothing written
// when it exceeds out_cap), or -1 for an invalid name or facets.
#include <stddef.h>
int64_t turnout_fast_get_variable_json(uint64_t client, const uint8_t *name, size_t name_len,
                                       const uint8_t *facets, size_t facets_len, uint8_t *out, size_t out_cap);

#endif
