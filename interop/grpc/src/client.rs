//! The quotes client, hand-written over tonic's client machinery (what `tonic-build` would generate).

use bytes::Bytes;
use http::uri::PathAndQuery;
use tonic::client::{Grpc, GrpcService};
use tonic::codec::Streaming;
use tonic::{IntoRequest, Response, Status};
use tonic_prost::ProstCodec;

use crate::BoxError;
use crate::messages::{Quote, QuoteRequest, StreamRequest};
use crate::server::{GET_QUOTE, STREAM_QUOTES};

/// A client of the quotes API over any tonic transport `T`: a [`Channel`](tonic::transport::Channel), or a
/// channel under Tower layers (`ServiceBuilder::new().layer(..).service(channel)`).
#[derive(Debug, Clone)]
pub struct QuotesClient<T> {
    inner: Grpc<T>,
}

impl<T> QuotesClient<T>
where
    T: GrpcService<tonic::body::Body>,
    T::Error: Into<BoxError>,
    T::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<BoxError> + Send,
{
    /// A client over `transport`.
    pub fn new(transport: T) -> Self {
        Self { inner: Grpc::new(transport) }
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.inner.ready().await.map_err(|e| Status::unavailable(format!("transport not ready: {}", e.into())))
    }

    /// `GetQuote`. Set a deadline with `Request::set_timeout` (sent as `grpc-timeout`).
    pub async fn get_quote(&mut self, request: impl IntoRequest<QuoteRequest>) -> Result<Response<Quote>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<QuoteRequest, Quote>::default();
        self.inner.unary(request.into_request(), PathAndQuery::from_static(GET_QUOTE), codec).await
    }

    /// `StreamQuotes`: the answer's head, then its quotes from the [`Streaming`] (`.message().await`).
    pub async fn stream_quotes(
        &mut self,
        request: impl IntoRequest<StreamRequest>,
    ) -> Result<Response<Streaming<Quote>>, Status> {
        self.ready().await?;
        let codec = ProstCodec::<StreamRequest, Quote>::default();
        self.inner.server_streaming(request.into_request(), PathAndQuery::from_static(STREAM_QUOTES), codec).await
    }
}
