//! Who is calling. Until the gateway issue brings signed tokens, the caller's id is taken from
//! the `x-crm-actor` metadata (default `anonymous`); the kit's auth interceptor will replace
//! this one function, so services already record the caller everywhere.

/// The metadata key that names the caller (pre-authentication placeholder).
pub const ACTOR_HEADER: &str = "x-crm-actor";

/// The id of the user or API key making `request`.
pub fn actor<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get(ACTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .unwrap_or("anonymous")
        .to_string()
}
