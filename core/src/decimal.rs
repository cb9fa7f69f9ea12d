//! The decimal text of integers: [`DecBuf`], the one integer formatter of
//! the engine.
//!
//! Every integer the engine turns into text goes through it: an integer
//! facet's canonical string (built once, in `facets.rs`), the `ts` read from
//! the clock and the time-slice window index (`eval.rs`), integer operands
//! and constraint texts (`config/`), and [`crate::FacetValue::canonical`].
//! It writes what `i64`'s `Display` writes (spec rule 1: no sign for zero or
//! positives, no leading zeros), without a formatter and without allocating.

/// Decimal form of an `i64` in a stack buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecBuf {
    buf: [u8; 20],
    start: u8,
}

impl DecBuf {
    /// The decimal text of `n`.
    pub(crate) fn new(n: i64) -> DecBuf {
        // Two digits per division (ids are long: a 10-digit id takes 5).
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut u = n.unsigned_abs();
        while u >= 100 {
            let d = (u % 100) as usize * 2;
            u /= 100;
            i -= 2;
            buf[i] = PAIRS[d];
            buf[i + 1] = PAIRS[d + 1];
        }
        if u >= 10 {
            let d = u as usize * 2;
            i -= 2;
            buf[i] = PAIRS[d];
            buf[i + 1] = PAIRS[d + 1];
        } else {
            i -= 1;
            buf[i] = b'0' + u as u8;
        }
        if n < 0 {
            i -= 1;
            buf[i] = b'-';
        }
        DecBuf { buf, start: i as u8 }
    }
    /// The text.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        let bytes = self.buf.get(self.start as usize..).unwrap_or_default();
        debug_assert!(bytes.is_ascii());
        // SAFETY: `new` writes only ASCII digits and '-' from `start` on, and
        // nothing else writes `buf` (this is on every integer facet's
        // canonical-string read, where validation showed up in profiles).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_canonical_strings_match_std() {
        let mut cases =
            vec![0i64, 1, 9, 10, 99, 100, 101, 999, 1000, -1, -10, -99, -100, i64::MAX, i64::MIN, i64::MIN + 1];
        let mut p = 1i64;
        while let Some(next) = p.checked_mul(10) {
            cases.extend([p - 1, p, p + 1, -p, next / 10 * 9]);
            p = next;
        }
        for n in cases {
            assert_eq!(DecBuf::new(n).as_str(), n.to_string(), "{n}");
        }
    }
}
