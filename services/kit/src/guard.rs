//! A tower layer that checks each request before the service sees it and answers a refusal
//! itself: the one shape behind authentication and rate limiting.

use std::task::{Context, Poll};

use tonic::Status;

/// A check of one request; it may add to the request's extensions.
pub trait Guard: Clone + Send + Sync + 'static {
    /// Lets the request through, or refuses it with a status.
    fn check<B>(&self, request: &mut http::Request<B>) -> Result<(), Status>;
}

/// Applies a [`Guard`] to every request.
#[derive(Clone)]
pub struct GuardLayer<G> {
    guard: G,
}

impl<G> GuardLayer<G> {
    /// The layer of `guard`.
    pub fn new(guard: G) -> Self {
        Self { guard }
    }
}

impl<S, G: Clone> tower::Layer<S> for GuardLayer<G> {
    type Service = GuardService<S, G>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// The service made by [`GuardLayer`].
#[derive(Clone)]
pub struct GuardService<S, G> {
    inner: S,
    guard: G,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, G, B, R> tower::Service<http::Request<B>> for GuardService<S, G>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    G: Guard,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Err(status) = self.guard.check(&mut request) {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // the clone that was made ready serves this call; a fresh clone waits for the next
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(request))
    }
}
