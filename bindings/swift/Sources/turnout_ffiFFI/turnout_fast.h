// The fast paths of the Swift facade: the C ABI (turnout.h, ffi/include/turnout.h copied here by
// `cargo xtask swift`; not in git), whose handle types are the one handle every fast path shares
// (a generated object's fastHandle() gives one: TurnoutContext *, TurnoutVariable *,
// TurnoutClient * as a number; freed with turnout_context_free / _variable_free / _client_free),
// and the two calls of ffi/src/fast.rs that answer UniFFI's serialised Decision record.
// `cargo xtask swift` checks that the fast.rs functions declared here are exactly those of fast.rs.
#ifndef TURNOUT_FAST_H
#define TURNOUT_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "turnout.h"

// The full decision of var for ctx, written into `out` as UniFFI's serialised Decision record;
// returns its length (nothing written when it exceeds out_cap), or -1 for a null handle.
int64_t turnout_fast_decision(const TurnoutContext *ctx, const TurnoutVariable *var, uint8_t *out,
                              size_t out_cap);

// A one-shot decision from facets as JSON text, written into `out` as in turnout_fast_decision,
// or -1 for an invalid name or facets.
int64_t turnout_fast_get_variable_json(const TurnoutClient *client, const uint8_t *name, size_t name_len,
                                       const uint8_t *facets, size_t facets_len, uint8_t *out, size_t out_cap);

#endif
