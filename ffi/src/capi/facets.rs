//! Facet arguments: JSON text, or the compact binary form the Go package
//! builds without any JSON (layout in the module docs of [`super`]).

use turnout_core::{FacetValue, Facets};

use super::error::Fail;

/// First byte of a binary facets buffer (never the first byte of JSON text).
pub const TURNOUT_FACETS_BINARY: u8 = 0xF1;
/// Binary facets entry: name, then a little-endian `int64_t`.
pub const TURNOUT_FACET_INT64: u8 = 1;
/// Binary facets entry: name, then a little-endian IEEE 754 `double`.
pub const TURNOUT_FACET_FLOAT64: u8 = 2;
/// Binary facets entry: name, then one byte, 0 or 1.
pub const TURNOUT_FACET_BOOL: u8 = 3;
/// Binary facets entry: name, then a string.
pub const TURNOUT_FACET_STRING: u8 = 4;
/// Binary facets entry: a string holding a JSON object of facets, set in order.
pub const TURNOUT_FACET_JSON: u8 = 5;

/// Reads a facets argument (empty, JSON text or binary).
pub(crate) fn parse(bytes: &[u8]) -> Result<Facets, Fail> {
    match bytes.split_first() {
        None => Ok(Facets::new()),
        Some((&TURNOUT_FACETS_BINARY, rest)) => decode_binary(rest),
        Some(_) => {
            let text = std::str::from_utf8(bytes).map_err(|e| Fail::utf8("facets", &e))?;
            Ok(Facets::from_json_str(text)?)
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, what: &str) -> Fail {
        // Offsets are 0-based in the whole buffer (+1: the leading TURNOUT_FACETS_BINARY byte).
        Fail::facets(format!("binary facets: {what} at byte {}", self.pos + 1))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or_else(|| self.fail("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, Fail> {
        Ok(self.take(1)?[0])
    }

    fn eight(&mut self) -> Result<[u8; 8], Fail> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(b)
    }

    fn varint(&mut self) -> Result<usize, Fail> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(v).map_err(|_| self.fail("length too large"));
            }
        }
        Err(self.fail("varint too long"))
    }

    fn string(&mut self) -> Result<&'a str, Fail> {
        let n = self.varint()?;
        let start = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map_err(|e| Fail::facets(format!("binary facets: invalid UTF-8 at byte {}: {e}", start + 1)))
    }
}

/// One entry of a binary buffer, borrowed from it.
enum Entry<'a> {
    Pair(&'a str, FacetValue),
    Json(&'a str),
}

/// Reads one typed entry (tag already read), or `None` for a JSON entry.
fn pair<'a>(r: &mut Reader<'a>, tag: u8) -> Result<Option<(&'a str, FacetValue)>, Fail> {
    Ok(Some(match tag {
        TURNOUT_FACET_INT64 => (r.string()?, FacetValue::Int(i64::from_le_bytes(r.eight()?))),
        TURNOUT_FACET_FLOAT64 => (r.string()?, FacetValue::Float(f64::from_le_bytes(r.eight()?))),
        TURNOUT_FACET_BOOL => {
            let name = r.string()?;
            match r.byte()? {
                0 => (name, FacetValue::Bool(false)),
                1 => (name, FacetValue::Bool(true)),
                _ => return Err(r.fail("boolean not 0 or 1")),
            }
        }
        TURNOUT_FACET_STRING => {
            let name = r.string()?;
            (name, FacetValue::Str(r.string()?.to_owned()))
        }
        TURNOUT_FACET_JSON => return Ok(None),
        _ => {
            r.pos -= 1;
            return Err(r.fail(&format!("unknown entry tag {tag}")));
        }
    }))
}

/// Decodes a binary buffer. The common buffer (typed entries only) is read
/// straight into the facets, with no intermediate list; one holding a JSON
/// entry is read again by [`decode_with_json`].
fn decode_binary(bytes: &[u8]) -> Result<Facets, Fail> {
    let mut r = Reader { bytes, pos: 0 };
    let mut failed = None;
    let mut saw_json = false;
    let pairs = std::iter::from_fn(|| {
        if r.pos >= bytes.len() || failed.is_some() {
            return None;
        }
        let next = r.byte().and_then(|tag| pair(&mut r, tag));
        match next {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                saw_json = true;
                None
            }
            Err(e) => {
                failed = Some(e);
                None
            }
        }
    });
    let facets = turnout_core::host::facets_from_pairs(pairs);
    match (failed, saw_json) {
        (Some(e), _) => Err(e),
        (None, true) => decode_with_json(bytes),
        (None, false) => Ok(facets?),
    }
}

/// [`decode_binary`] for a buffer with JSON entries: their objects are parsed
/// first, so that the names set from them can be borrowed.
fn decode_with_json(bytes: &[u8]) -> Result<Facets, Fail> {
    let mut r = Reader { bytes, pos: 0 };
    let mut entries = Vec::new();
    while r.pos < bytes.len() {
        let tag = r.byte()?;
        entries.push(match pair(&mut r, tag)? {
            Some((name, value)) => Entry::Pair(name, value),
            None => Entry::Json(r.string()?),
        });
    }
    // JSON entries are parsed first, so that their names can be borrowed below.
    let json: Vec<Facets> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Json(text) => Some(Facets::from_json_str(text)),
            Entry::Pair(..) => None,
        })
        .collect::<Result<_, _>>()?;
    let mut json = json.iter();
    let mut pairs: Vec<(&str, FacetValue)> = Vec::with_capacity(entries.len());
    for e in entries {
        match e {
            Entry::Pair(name, value) => pairs.push((name, value)),
            Entry::Json(_) => {
                if let Some(more) = json.next() {
                    pairs.extend(more.iter().map(|f| (f.key(), f.value().clone())));
                }
            }
        }
    }
    // One pass: well-known names not copied, the fingerprint computed once.
    Ok(turnout_core::host::facets_from_pairs(pairs)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn entry(out: &mut Vec<u8>, tag: u8, name: &str) {
        out.push(tag);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }

    #[test]
    fn binary_matches_json() {
        let mut b = vec![TURNOUT_FACETS_BINARY];
        entry(&mut b, TURNOUT_FACET_INT64, "pax");
        b.extend_from_slice(&9_007_199_254_740_993i64.to_le_bytes());
        entry(&mut b, TURNOUT_FACET_STRING, "country");
        b.push(2);
        b.extend_from_slice(b"SG");
        entry(&mut b, TURNOUT_FACET_FLOAT64, "score");
        b.extend_from_slice(&0.25f64.to_le_bytes());
        entry(&mut b, TURNOUT_FACET_BOOL, "vip");
        b.push(1);
        let json = r#"{"city": 6, "pax": 1}"#;
        b.push(TURNOUT_FACET_JSON);
        b.push(json.len() as u8);
        b.extend_from_slice(json.as_bytes());
        let f = parse(&b).unwrap();
        // The JSON entry comes last, so its pax replaces the first one.
        let want = Facets::from_json_str(r#"{"pax": 1, "country": "SG", "score": 0.25, "vip": true, "city": 6}"#);
        assert_eq!(f, want.unwrap());
        assert_eq!(f.get("pax").unwrap().value(), &FacetValue::Int(1));
        assert_eq!(parse(b"").unwrap(), Facets::new());
        assert_eq!(
            parse(br#"{"pax": {"$int64": "9007199254740993"}}"#).unwrap().get("pax").unwrap().canonical(),
            "9007199254740993"
        );
    }

    #[test]
    fn malformed_binary_is_an_error_with_offset() {
        let mut b = vec![TURNOUT_FACETS_BINARY];
        entry(&mut b, TURNOUT_FACET_INT64, "pax");
        b.extend_from_slice(&[1, 2, 3]); // 3 of 8 bytes
        let e = parse(&b).unwrap_err();
        assert_eq!(e.status_for_tests(), super::super::TurnoutStatus::Facets);
        assert_eq!(e.kind_for_tests(), turnout_core::ErrorKind::InvalidFacets);
        assert!(e.message_for_tests().contains("truncated at byte 6"), "{e:?}");
        let e = parse(&[TURNOUT_FACETS_BINARY, 9]).unwrap_err();
        assert!(e.message_for_tests().contains("unknown entry tag 9 at byte 1"), "{e:?}");
        let e = parse(&[TURNOUT_FACETS_BINARY, TURNOUT_FACET_STRING, 1, 0xFF]).unwrap_err();
        assert!(e.message_for_tests().contains("invalid UTF-8"), "{e:?}");
        let e = parse(&[TURNOUT_FACETS_BINARY, TURNOUT_FACET_BOOL, 1, b'x', 2]).unwrap_err();
        assert!(e.message_for_tests().contains("boolean"), "{e:?}");
        let e = parse(&[
            TURNOUT_FACETS_BINARY,
            TURNOUT_FACET_INT64,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
            0xFF,
        ]);
        assert!(e.unwrap_err().message_for_tests().contains("varint"));
        assert!(parse(b"[1]").is_err());
        assert!(parse(&[0xFF]).unwrap_err().message_for_tests().contains("UTF-8"));
    }
}
