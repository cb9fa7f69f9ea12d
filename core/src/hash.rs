//! Hashing primitives of the spec: `bucket`, unit joining and splitmix64.
//!
//! Everything here works on bytes and `u64`; nothing depends on the pointer
//! width or on platform formatting, so every target computes the same values.

use std::mem::MaybeUninit;

use xxhash_rust::xxh3::xxh3_64;

/// Separator placed between the salt and the unit before hashing (spec rule 2).
pub const SALT_SEP: u8 = 0x00;
/// Separator placed between the canonical strings of a multi-facet unit.
pub const UNIT_SEP: u8 = 0x1F;

const STACK: usize = 256;

/// A byte buffer that stays on the stack for the common case (salt and unit
/// under 256 bytes) and spills to the heap only for longer inputs.
///
/// The stack part is left uninitialised (it is built on every hashed
/// decision; zeroing 256 bytes each time showed up in profiles): only
/// `stack[..len]` is ever read, and it is always written first.
pub(crate) struct KeyBuf {
    stack: MaybeUninit<[u8; STACK]>,
    len: usize,
    heap: Option<Vec<u8>>,
}

impl KeyBuf {
    #[inline]
    pub(crate) fn new() -> Self {
        KeyBuf { stack: MaybeUninit::uninit(), len: 0, heap: None }
    }

    #[inline]
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if let Some(h) = self.heap.as_mut() {
            h.extend_from_slice(bytes);
            return;
        }
        let end = self.len + bytes.len();
        if end <= STACK {
            // SAFETY: `len..end` is within `stack` (checked above), and
            // `bytes` cannot overlap a buffer we own exclusively.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.stack.as_mut_ptr().cast::<u8>().add(self.len),
                    bytes.len(),
                );
            }
            self.len = end;
        } else {
            let mut v = Vec::with_capacity(end * 2);
            v.extend_from_slice(self.as_bytes());
            v.extend_from_slice(bytes);
            self.heap = Some(v);
        }
    }

    #[inline]
    pub(crate) fn push_byte(&mut self, b: u8) {
        self.push(&[b]);
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.heap {
            Some(h) => h,
            // SAFETY: `stack[..len]` has been written by `push` (len <= STACK).
            None => unsafe { std::slice::from_raw_parts(self.stack.as_ptr().cast::<u8>(), self.len) },
        }
    }

    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        xxh3_64(self.as_bytes())
    }
}

/// `xxh3_64(prefix ++ unit)`, where `prefix` is a salt with its separator
/// already appended (`utf8(salt) ++ 0x00`, built once at load time): the
/// `/` and slot hashes of the hot path, with no per-call buffer set-up.
#[inline]
pub(crate) fn prefixed_hash(prefix: &[u8], unit: &[u8]) -> u64 {
    hash_parts([prefix, unit])
}

/// `xxh3_64` of the concatenation of `parts`, assembled in an uninitialised
/// stack buffer when it fits (every hash of the engine is short), else on the
/// heap. Cheaper than [`KeyBuf`] for a fixed number of parts.
#[inline]
pub(crate) fn hash_parts<const N: usize>(parts: [&[u8]; N]) -> u64 {
    const CAP: usize = 128;
    let n: usize = parts.iter().map(|p| p.len()).sum();
    if n > CAP {
        return xxh3_64(&parts.concat());
    }
    let mut buf = MaybeUninit::<[u8; CAP]>::uninit();
    let p = buf.as_mut_ptr().cast::<u8>();
    let mut at = 0;
    for part in parts {
        // SAFETY: the parts total `n <= CAP` bytes, so every copy stays
        // inside `buf`; exactly the `n` bytes read below were written.
        unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), p.add(at), part.len()) };
        at += part.len();
    }
    // SAFETY: see above.
    xxh3_64(unsafe { std::slice::from_raw_parts(p, n) })
}

/// `utf8(salt) ++ 0x00`: the prefix of [`prefixed_hash`].
pub(crate) fn salt_prefix(salt: &str) -> Box<[u8]> {
    let mut v = Vec::with_capacity(salt.len() + 1);
    v.extend_from_slice(salt.as_bytes());
    v.push(SALT_SEP);
    v.into_boxed_slice()
}

/// `xxh3_64(utf8(salt) ++ 0x00 ++ unit_parts joined by 0x1F)`.
pub(crate) fn salted_hash<'a, I>(salt: &str, parts: I) -> u64
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut buf = KeyBuf::new();
    buf.push(salt.as_bytes());
    buf.push_byte(SALT_SEP);
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            buf.push_byte(UNIT_SEP);
        }
        buf.push(p);
    }
    buf.hash()
}

/// Maps a 64-bit hash to a float in `[0, 1)` using its top 53 bits.
#[inline]
pub fn hash_to_unit_interval(h: u64) -> f64 {
    // 2^-53 exactly; the product is exact because (h >> 11) < 2^53.
    (h >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// `bucket(salt, unit)` of spec rule 2: a float in `[0, 1)`.
///
/// ```
/// let b = turnout_core::bucket("automatedMessageDelay", "1234");
/// assert!((0.0..1.0).contains(&b));
/// ```
pub fn bucket(salt: &str, unit: &str) -> f64 {
    hash_to_unit_interval(salted_hash(salt, [unit.as_bytes()]))
}

/// The splitmix64 generator used by the time-slice shuffle (spec rule 5).
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose first output follows `state + golden gamma`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64-bit output (wrapping arithmetic throughout).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // Reference outputs of splitmix64 seeded with 1234567 (Vigna's
        // published C implementation).
        let mut g = SplitMix64::new(1234567);
        assert_eq!(g.next(), 6457827717110365317);
        assert_eq!(g.next(), 3203168211198807973);
        assert_eq!(g.next(), 9817491932198370423);
    }

    #[test]
    fn bucket_uses_separator() {
        // "ab" + "c" must differ from "a" + "bc".
        assert_ne!(bucket("ab", "c"), bucket("a", "bc"));
        let direct = hash_to_unit_interval(xxh3_64(b"ab\x00c"));
        assert_eq!(bucket("ab", "c"), direct);
    }

    #[test]
    fn keybuf_spills_to_heap_identically() {
        let long = "x".repeat(1000);
        let mut v = b"s".to_vec();
        v.push(0);
        v.extend_from_slice(long.as_bytes());
        assert_eq!(salted_hash("s", [long.as_bytes()]), xxh3_64(&v));
    }

    #[test]
    fn prefixed_hash_is_the_salted_hash() {
        for (salt, unit) in [("automatedMessageDelay", "1234567"), ("", ""), ("s", &*"u".repeat(200))] {
            assert_eq!(prefixed_hash(&salt_prefix(salt), unit.as_bytes()), salted_hash(salt, [unit.as_bytes()]));
            let (a, b) = unit.split_at(unit.len() / 2);
            assert_eq!(
                hash_parts([salt.as_bytes(), &[SALT_SEP], a.as_bytes(), b.as_bytes()]),
                salted_hash(salt, [unit.as_bytes()])
            );
        }
    }

    #[test]
    fn unit_interval_bounds() {
        assert_eq!(hash_to_unit_interval(0), 0.0);
        assert!(hash_to_unit_interval(u64::MAX) < 1.0);
    }
}
