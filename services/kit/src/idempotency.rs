//! Request-id idempotency: a retried Create or transition returns the first call's response
//! and writes nothing new. The key, the work and the stored response commit in one transaction;
//! concurrent retries of one request id are serialised by a transaction-scoped advisory lock.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::error::Error;

/// The idempotency key of one call: method, request id and a digest of the request.
#[derive(Debug, Clone)]
pub struct RequestKey {
    method: &'static str,
    request_id: String,
    request_hash: Vec<u8>,
}

impl RequestKey {
    /// Checks the request id (1 to 100 printable characters) and digests the request.
    pub fn new<M: Message>(
        method: &'static str,
        request_id: &str,
        request: &M,
    ) -> Result<Self, Error> {
        if request_id.is_empty() {
            return Err(Error::invalid(
                "request_id",
                "is required (a unique id such as a uuid)",
            ));
        }
        if request_id.chars().count() > 100 || request_id.chars().any(char::is_control) {
            return Err(Error::invalid(
                "request_id",
                "must be at most 100 printable characters",
            ));
        }
        Ok(Self {
            method,
            request_id: request_id.to_string(),
            request_hash: Sha256::digest(request.encode_to_vec()).to_vec(),
        })
    }

    /// Locks the key for this transaction and returns the stored response of an earlier call
    /// with the same request id, if there was one. A request id reused for a different request
    /// is `INVALID_ARGUMENT`.
    pub async fn replay<R: Message + Default>(
        &self,
        tx: &mut PgConnection,
    ) -> Result<Option<R>, Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
            .bind(self.method)
            .bind(&self.request_id)
            .execute(&mut *tx)
            .await?;
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT request_hash, response FROM idempotency_keys WHERE method = $1 AND request_id = $2",
        )
        .bind(self.method)
        .bind(&self.request_id)
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            None => Ok(None),
            Some((hash, _)) if hash != self.request_hash => Err(Error::invalid(
                "request_id",
                "was already used for a different request",
            )),
            Some((_, response)) => R::decode(response.as_slice()).map(Some).map_err(|e| {
                Error::Internal(anyhow::anyhow!("stored response does not decode: {e}"))
            }),
        }
    }

    /// Stores the response of this call, in the same transaction as its work.
    pub async fn record<R: Message>(
        &self,
        tx: &mut PgConnection,
        response: &R,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO idempotency_keys (method, request_id, request_hash, response, create_time) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.method)
        .bind(&self.request_id)
        .bind(&self.request_hash)
        .bind(response.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
