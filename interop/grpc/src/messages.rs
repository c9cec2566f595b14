//! The messages of the quotes API, hand-written with prost. The equivalent `.proto`:
//!
//! ```text
//! syntax = "proto3";
//! package brownout.quotes.v1;
//! service Quotes {
//!   rpc GetQuote(QuoteRequest) returns (Quote);
//!   rpc StreamQuotes(StreamRequest) returns (stream Quote);
//! }
//! message QuoteRequest { string symbol = 1; }
//! message StreamRequest { string symbol = 1; uint32 count = 2; }
//! message Quote { string symbol = 1; int64 price_cents = 2; uint32 seq = 3; }
//! ```

/// `GetQuote`'s request.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct QuoteRequest {
    /// The ticker symbol.
    #[prost(string, tag = "1")]
    pub symbol: String,
}

/// `StreamQuotes`'s request.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct StreamRequest {
    /// The ticker symbol.
    #[prost(string, tag = "1")]
    pub symbol: String,
    /// How many quotes to stream.
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

/// A quote.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Quote {
    /// The ticker symbol.
    #[prost(string, tag = "1")]
    pub symbol: String,
    /// The price, in cents.
    #[prost(int64, tag = "2")]
    pub price_cents: i64,
    /// The quote's place in a stream (0 for a unary answer).
    #[prost(uint32, tag = "3")]
    pub seq: u32,
}
