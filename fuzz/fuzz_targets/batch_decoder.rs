//! Fuzz target: arbitrary bytes as an event batch or batch stream. Decoding
//! must return `Ok` or `Err`, never panic, and never allocate beyond a fixed
//! multiple of the input; whatever decodes must re-encode to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use turnout_core::tracking::{checksum, split_stream};
use turnout_core::{decode_batch, encode_batch};

fuzz_target!(|data: &[u8]| {
    if let Ok(batches) = split_stream(data) {
        for b in batches {
            let _ = decode_batch(b);
        }
    }
    // Give the body a valid magic, version and checksum so the parser behind
    // the CRC check is reached, not only the checksum rejection.
    if data.len() >= 9 {
        let mut b = data.to_vec();
        b[..5].copy_from_slice(b"TRNB\x01");
        let n = b.len() - 4;
        let crc = checksum(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(d) = decode_batch(&b) {
            // Decoding is exact: re-encoding what came out gives an equivalent batch.
            let again = encode_batch(&d.header, &d.events);
            let d2 = decode_batch(&again).expect("re-encoded batch decodes");
            assert_eq!(d2.header, d.header);
            assert_eq!(d2.events.len(), d.events.len());
        }
    }
});
