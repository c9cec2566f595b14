//! The quotes service, hand-written over tonic's server machinery (what `tonic-build` would generate).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Body;
use tokio_stream::Stream;
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::messages::{Quote, QuoteRequest, StreamRequest};

/// The service's full name.
pub const SERVICE: &str = "brownout.quotes.v1.Quotes";
/// `GetQuote`'s path.
pub const GET_QUOTE: &str = "/brownout.quotes.v1.Quotes/GetQuote";
/// `StreamQuotes`'s path.
pub const STREAM_QUOTES: &str = "/brownout.quotes.v1.Quotes/StreamQuotes";

/// The price every quote of `symbol` has: a fixed table, so tests can compare answers.
pub fn price_of(symbol: &str) -> Option<i64> {
    match symbol {
        "BRN" => Some(10_125),
        "OUT" => Some(4_200),
        _ => None,
    }
}

fn quote(symbol: &str, seq: u32) -> Result<Quote, Status> {
    price_of(symbol)
        .map(|price_cents| Quote { symbol: symbol.to_owned(), price_cents, seq })
        .ok_or_else(|| Status::not_found(format!("no quotes for {symbol:?}")))
}

/// At most this many quotes per stream: a longer stream sends them, then ends with `RESOURCE_EXHAUSTED` in
/// its trailers (a real status carried in trailers, for the breaker and fallback to read).
pub const MAX_STREAM: u32 = 10;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The quotes service as a tonic service: add it with `Server::builder().add_service(QuotesServer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuotesServer;

impl NamedService for QuotesServer {
    const NAME: &'static str = SERVICE;
}

struct GetQuote;

impl UnaryService<QuoteRequest> for GetQuote {
    type Response = Quote;
    type Future = BoxFuture<Result<Response<Quote>, Status>>;

    fn call(&mut self, request: Request<QuoteRequest>) -> Self::Future {
        let symbol = request.into_inner().symbol;
        Box::pin(async move { quote(&symbol, 0).map(Response::new) })
    }
}

struct StreamQuotes;

/// The stream of `StreamQuotes`.
type QuoteStream = Pin<Box<dyn Stream<Item = Result<Quote, Status>> + Send + 'static>>;

impl ServerStreamingService<StreamRequest> for StreamQuotes {
    type Response = Quote;
    type ResponseStream = QuoteStream;
    type Future = BoxFuture<Result<Response<QuoteStream>, Status>>;

    fn call(&mut self, request: Request<StreamRequest>) -> Self::Future {
        let StreamRequest { symbol, count } = request.into_inner();
        Box::pin(async move {
            quote(&symbol, 0)?;
            let quotes = (1..=count.min(MAX_STREAM)).map(move |seq| quote(&symbol, seq));
            let over = (count > MAX_STREAM)
                .then(|| Err(Status::resource_exhausted(format!("at most {MAX_STREAM} quotes per stream"))));
            let quotes = quotes.chain(over);
            Ok(Response::new(Box::pin(tokio_stream::iter(quotes)) as QuoteStream))
        })
    }
}

impl<B> tower::Service<http::Request<B>> for QuotesServer
where
    B: Body + Send + 'static,
    B::Error: Into<crate::BoxError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            GET_QUOTE => Box::pin(async move {
                Ok(Grpc::new(ProstCodec::<Quote, QuoteRequest>::default()).unary(GetQuote, req).await)
            }),
            STREAM_QUOTES => Box::pin(async move {
                Ok(Grpc::new(ProstCodec::<Quote, StreamRequest>::default()).server_streaming(StreamQuotes, req).await)
            }),
            _ => Box::pin(async { Ok(Status::new(Code::Unimplemented, "no such method").into_http()) }),
        }
    }
}
