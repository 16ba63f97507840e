//! One HTTP client engine for Rust, Python, Node, Go and C. Start with [`Client::builder`]:
//! every knob is a field of [`Config`], every failure an [`Error`] with a stable [`ErrorKind`] code.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used, clippy::dbg_macro, clippy::print_stdout)]

mod balance;
#[doc(hidden)]
pub mod bench_support;
mod body;
mod cache;
mod client;
mod compress;
pub mod config;
mod connect;
mod cookies;
mod dead_letter;
mod error;
#[doc(hidden)]
pub mod fuzz_support;
pub mod layer;
pub mod metrics;
mod origin;
mod otel;
mod policy;
mod pool;
mod redirect;
mod redis_link;
mod request;
mod request_body;
mod response;
pub mod runtime;
pub mod sse;

pub use crate::body::{Body, RequestBody};
pub use crate::cache::CacheStatus;
pub use crate::client::{Client, ClientBuilder, RequestBuilder};
pub use crate::config::Config;
pub use crate::cookies::Cookie;
pub use crate::dead_letter::{DeadLetter, DeadLetterSink};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::layer::ResilienceLayer;
pub use crate::metrics::{Diagnostics, Stats};
pub use crate::otel::{SpanRecord, SpanSink, SpanValue};
pub use crate::policy::{Answer, BreakerEvent, BreakerState};
pub use crate::request::{
    CacheMode, DEFAULT_URGENCY, MAX_RATE_LIMIT_KEY_BYTES, MAX_REDIRECTS, PRIORITY_WORDS, Priority,
    RedirectPolicy, Request, RequestOptions, basic_auth, parse_header, parse_method, parse_url,
    urgency,
};
pub use crate::response::{Response, SMALL_BODY_BYTES, Timings, TlsInfo};
pub use http::{HeaderMap, Method, StatusCode, Uri, Version};

/// The engine's version, the one number every artifact carries (see CHANGELOG.md).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
