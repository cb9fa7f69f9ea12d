//! # turnout-core
//!
//! The deterministic feature-flag and experimentation engine behind every
//! turnout binding. Pure Rust, no I/O: a [`Client`] holds a compiled config
//! and answers "which value does this unit get?" locally.
//!
//! ```
//! use turnout_core::{Client, ClientOptions, Facets};
//!
//! let config = br#"{"variable": "delay", "rollouts": [
//!     {"value": 60, "constraints": [{"target": "city", "op": "=", "value": "6"}]}],
//!   "default": 30}"#;
//! let (client, _report) = Client::with_config(config, ClientOptions::default()).unwrap();
//! let d = client.get_variable("delay", &Facets::new().city(6));
//! assert_eq!(d.int64(10), 60);
//!
//! // The prepared path: build the context and the handle once.
//! let ctx = client.context(Facets::new().city(7));
//! let delay = client.variable("delay");
//! assert_eq!(ctx.int64(&delay, 10), 30);
//! ```
//!
//! The rules are written up in `docs/spec.md` (spec version [`SPEC_VERSION`]).

#![deny(missing_docs)]

mod client;
pub mod clock;
mod config;
mod decimal;
mod decision;
mod error;
mod eval;
pub mod facets;
mod hash;
pub mod host;
pub mod limits;
mod model;
pub mod regex_weight;
pub mod sync;
pub mod tracking;
mod value;

pub use client::{Client, ClientOptions, Context, Explanation, UpdateReport, Variable};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{Isolation, Rejected, SCHEMA_VERSION};
pub use decision::{Decision, ErrorCode, Reason, Source, ValueType};
pub use error::{ConfigError, Error, ErrorDetail, ErrorKind, FacetError, HostError, Problem};
pub use facets::{Facet, Facets};
pub use hash::{bucket, hash_to_unit_interval, SplitMix64};
pub use limits::{Limit, LimitError};
pub use tracking::{
    decode_batch, encode_batch, Batch, BatchHeader, DecisionEvents, DecodeError, DecodedBatch, Event, EventData,
    TrackingOptions, TrackingStats,
};
pub use value::{FacetValue, Num};

/// The version of the evaluation contract this engine implements (docs/spec.md).
pub const SPEC_VERSION: u32 = 1;
