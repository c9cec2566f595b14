//! gRPC answers built by hand: a successful answer with one message (what a fallback serves from a cache) and
//! a buffered answer ([`BufferBodyLayer`](brownout_tower::BufferBodyLayer)) replayed with its trailers.

use brownout_tower::body::Trailers;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};

/// A gRPC message frame: the uncompressed flag, the length (big-endian), the encoded message.
pub fn frame(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).expect("a message under 4 GiB"));
    message.encode(&mut buf).expect("the buffer has room for the message");
    buf.freeze()
}

/// A successful gRPC answer with one `message`: HTTP 200, `content-type: application/grpc`, the framed
/// message, then trailers with `grpc-status: 0`.
pub fn ok(message: &impl prost::Message) -> http::Response<tonic::body::Body> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    with_trailers(http::Response::new(frame(message)), Some(trailers))
}

/// Serves a buffered answer (`http::Response<Bytes>` from [`BufferBodyLayer`](brownout_tower::BufferBodyLayer))
/// again as a tonic body, with the [`Trailers`] the buffer kept (`grpc-status` and `grpc-message` of an answer
/// that carries them in trailers), so the tonic client reads the status it would have read unbuffered.
pub fn replay(mut response: http::Response<Bytes>) -> http::Response<tonic::body::Body> {
    let trailers = response.extensions_mut().remove::<Trailers>().map(|t| t.0);
    with_trailers(response, trailers)
}

fn with_trailers(response: http::Response<Bytes>, trailers: Option<HeaderMap>) -> http::Response<tonic::body::Body> {
    let mut response = response.map(|data| {
        let body = Full::new(data).map_err(|never| match never {});
        let body = body.with_trailers(async move { trailers.map(Ok) });
        tonic::body::Body::new(body)
    });
    response.headers_mut().entry(CONTENT_TYPE).or_insert(HeaderValue::from_static("application/grpc"));
    response
}
