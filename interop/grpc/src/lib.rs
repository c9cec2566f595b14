//! Brownout behind tonic: a small quotes gRPC API (unary `GetQuote`, server-streaming `StreamQuotes`) served
//! behind [`HttpChaosLayer`](brownout_tower::HttpChaosLayer) on loopback, and its tonic client.
//!
//! The messages are hand-written prost messages and the service and client are hand-written over tonic's
//! prost codec, so nothing here needs `protoc` at build time. [`quotes.proto`](self::messages) documents the
//! wire contract.
//!
//! - [`serve()`]: the server, with the chaos layer in front of the routes.
//! - [`QuotesClient`]: the client over any tonic transport (a [`Channel`](tonic::transport::Channel), or one
//!   wrapped in Brownout's breaker and fallback).
//! - [`answer`]: gRPC answers built by hand, for a fallback that serves a cached quote, and a buffered answer
//!   replayed with its trailers.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod answer;
pub mod client;
pub mod messages;
pub mod serve;
pub mod server;

pub use client::QuotesClient;
pub use messages::{Quote, QuoteRequest, StreamRequest};
pub use serve::{Served, serve};
pub use server::QuotesServer;

/// The error type tonic's transports use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
