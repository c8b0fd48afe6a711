//! The inner half: a Connect call's body, read and transcoded once the call is authenticated
//! and within its rate.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use prost_reflect::MethodDescriptor;
use tonic::body::Body;
use tower::ServiceExt;

use super::{
    BoxFuture, Codec,
    codec::{frame, json_to_proto, read_body},
    pass, take_ready,
};

/// What the inner [`BodyLayer`] does to a Connect call's body (a request extension the outer
/// layer sets).
#[derive(Clone)]
pub(super) struct Pending {
    pub(super) codec: Codec,
    pub(super) method: MethodDescriptor,
    pub(super) limit: usize,
}

/// The inner half of the Connect layer, placed after authentication and the rate limit: reads
/// a Connect call's body (within the size limit) and turns it into one framed protobuf
/// message; a body that is too large or not the method's request message is answered as a
/// gRPC status (`INVALID_ARGUMENT` naming what is wrong, `RESOURCE_EXHAUSTED`), which the
/// outer half writes as a Connect error. Other requests pass untouched.
#[derive(Clone, Default)]
pub struct BodyLayer;

impl<S> tower::Layer<S> for BodyLayer {
    type Service = BodyService<S>;
    fn layer(&self, inner: S) -> BodyService<S> {
        BodyService { inner }
    }
}

/// See [`BodyLayer`].
#[derive(Clone)]
pub struct BodyService<S> {
    inner: S,
}

impl<S, ResBody> tower::Service<Request<Body>> for BodyService<S>
where
    S: tower::Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tower::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let Some(pending) = request.extensions_mut().remove::<Pending>() else {
            return pass(&mut self.inner, request);
        };
        let inner = take_ready(&mut self.inner);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let message = match read_body(body, pending.limit)
                .await
                .and_then(|body| match pending.codec {
                    Codec::Proto => Ok(body),
                    Codec::Json => json_to_proto(&pending.method, &body),
                }) {
                Ok(message) => message,
                Err(e) => return Ok(tonic::Status::new(e.code, e.message).into_http()),
            };
            let request = Request::from_parts(parts, Body::new(Full::new(frame(&message))));
            inner.oneshot(request).await.map(|r| r.map(Body::new))
        })
    }
}
