//! Tracking: decision events, `track()`, a bounded folding queue and the
//! binary batch format. Sans I/O: hosts move the bytes.

pub(crate) mod event;
pub(crate) mod recorder;
mod wire;

pub use event::{Event, EventData};
pub use recorder::{Batch, DecisionEvents, TrackingOptions, TrackingStats};
pub use wire::{
    append_to_stream, checksum, decode_batch, encode_batch, put_varint, split_stream, unzigzag, zigzag, BatchHeader,
    DecodeError, DecodedBatch, MAGIC, WIRE_VERSION,
};
