//! A document's fingerprint: a 64-bit hash of its parsed content, read from
//! the tape, so no text is re-serialised to compare versions of a document.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::tape::{Tok, J};

/// A document's fingerprint, which decides whether its variables are
/// reported as changed by an update ([`crate::model::Compiled::signature`]): a 64-bit hash
/// of the document's parsed content, computed from the tape (no text is
/// re-serialised).
///
/// Like the previous fingerprint (the `Value` re-serialised with sorted
/// keys), it ignores whitespace, the spelling of escapes and number
/// formatting that parses to the same number, and the order of object keys;
/// unknown fields count. One difference: an object with a duplicated key
/// hashes both entries (the previous one saw only the last), so adding or
/// removing a shadowed duplicate reports the document as changed. Only ever
/// compared with fingerprints computed by this same code.
pub(super) fn fingerprint(v: J<'_, '_>) -> u64 {
    content_hash(v.toks, v.at).0
}

/// The hash of the value at `at`, and the index just past it.
fn content_hash(toks: &[Tok<'_>], at: usize) -> (u64, usize) {
    // Distinct seeds per kind, so that e.g. `1`, `"1"` and `[1]` differ.
    const NULL: u64 = 0x6a09_e667_f3bc_c908;
    const BOOL: u64 = 0xbb67_ae85_84ca_a73b;
    const UINT: u64 = 0x3c6e_f372_fe94_f82b;
    const INT: u64 = 0xa54f_f53a_5f1d_36f1;
    const FLOAT: u64 = 0x510e_527f_ade6_82d1;
    const STR: u64 = 0x9b05_688c_2b3e_6c1f;
    const ARR: u64 = 0x1f83_d9ab_fb41_bd6b;
    const OBJ: u64 = 0x5be0_cd19_137e_2179;
    let h = match &toks[at] {
        Tok::Null => mix(NULL, 0),
        Tok::Bool(b) => mix(BOOL, u64::from(*b)),
        Tok::Num(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => mix(UINT, u),
            (None, Some(i)) => mix(INT, i as u64),
            _ => mix(FLOAT, n.as_f64().unwrap_or(f64::NAN).to_bits()),
        },
        Tok::Str(s) => xxh3_64_with_seed(s.as_bytes(), STR),
        Tok::Arr { end, len } => {
            // In order.
            let mut h = mix(ARR, *len as u64);
            let mut i = at + 1;
            while i < *end {
                let (e, next) = content_hash(toks, i);
                h = mix(h, e);
                i = next;
            }
            return (h, *end);
        }
        Tok::Obj(end) => {
            // In any order: the entries' hashes are added up.
            let mut sum = 0u64;
            let mut i = at + 1;
            while i < *end {
                let key = match &toks[i] {
                    Tok::Str(k) => xxh3_64_with_seed(k.as_bytes(), STR),
                    _ => 0,
                };
                let (value, next) = content_hash(toks, i + 1);
                sum = sum.wrapping_add(mix(key, value));
                i = next;
            }
            return (mix(OBJ, sum), *end);
        }
    };
    (h, at + 1)
}

/// Mixes two 64-bit values into one (a folded 128-bit multiply, then the
/// MurmurHash3 finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let m = u128::from(a ^ 0x2d35_8dcc_aa6c_78a5) * u128::from(b ^ 0x8bb8_4b93_962e_acc9);
    let mut z = (m as u64) ^ ((m >> 64) as u64);
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}
