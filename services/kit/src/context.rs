//! Who is calling: the [`Principal`] the auth layer verified and put into the request.

use crate::{auth::Principal, error::Error};

/// The verified caller of `request`. Every non-public method has one; its absence means the
/// auth layer was bypassed, which is refused.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Principal, Error> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("no verified caller".into()))
}
