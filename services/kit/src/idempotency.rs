//! Request-id idempotency: a retried Create or transition returns the first call's response
//! and writes nothing new. The key, the work and the stored response commit in one transaction;
//! concurrent retries of one request id are serialised by a transaction-scoped advisory lock.
//!
//! A use case is one idempotent write (issue 15):
//! ```ignore
//! let mut tx = crm_kit::begin_write!(key, &self.pool); // returns the earlier response, if any
//! // … rules, writes, audit, events in `tx` …
//! key.finish(tx, &response, now).await?; // stores the response and commits
//! ```
//! The key's method is the called one ([`RequestKey::of`] reads it from the call), so no use
//! case types a method name.

use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::{context::Call, error::Error};

/// The idempotency key of one call: method, request id and a digest of the request.
#[derive(Debug, Clone)]
pub struct RequestKey {
    method: String,
    request_id: String,
    request_hash: Vec<u8>,
}

/// How an idempotent write starts: the stored response of an earlier call with the same request
/// id, or a fresh transaction holding the key's lock.
pub enum Begun<R> {
    /// The request was made before: its response, to return as it is.
    Replay(R),
    /// A new request: do the work in this transaction and [`RequestKey::finish`] it.
    Fresh(Transaction<'static, Postgres>),
}

impl RequestKey {
    /// The key of `request` in `call` (the called method, as the security layer recorded it).
    pub fn of<M: Message>(call: &Call, request_id: &str, request: &M) -> Result<Self, Error> {
        if call.method.is_empty() {
            return Err(Error::Internal(anyhow::anyhow!(
                "the call has no method: the idempotency key needs it"
            )));
        }
        Self::new(&call.method, request_id, request)
    }

    /// Checks the request id (1 to 100 printable characters) and digests the request, for
    /// `method` (tools that act as a method outside a call; the API uses [`RequestKey::of`]).
    pub fn new<M: Message>(method: &str, request_id: &str, request: &M) -> Result<Self, Error> {
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
            method: method.to_string(),
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
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(self.lock_id())
            .execute(&mut *tx)
            .await?;
        self.stored(tx).await
    }

    /// The advisory lock of this key: the first eight bytes of a SHA-256 of method and request
    /// id (a collision only makes two requests wait for each other).
    fn lock_id(&self) -> i64 {
        let digest = Sha256::digest(format!("{}/{}", self.method, self.request_id));
        i64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
    }

    /// The stored response of an earlier call with this key (the key's lock held).
    async fn stored<R: Message + Default>(
        &self,
        tx: &mut PgConnection,
    ) -> Result<Option<R>, Error> {
        let row: Option<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT request_hash, response FROM idempotency_keys WHERE method = $1 AND request_id = $2",
        )
        .bind(&self.method)
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

    /// Begins the write: a transaction holding the key's lock, or the earlier response.
    /// `BEGIN` and the key's lock travel in one message (a simple query of two statements),
    /// then the look-up: two round trips.
    pub async fn begin<R: Message + Default>(&self, pool: &PgPool) -> Result<Begun<R>, Error> {
        // the lock id is a number: nothing of the request reaches the SQL text
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({})", self.lock_id());
        let mut tx = crate::db::begin_with(pool, &begin).await?;
        Ok(match self.stored(&mut tx).await? {
            Some(previous) => Begun::Replay(previous),
            None => Begun::Fresh(tx),
        })
    }

    /// Ends the write: stores `response` with the key and commits the work.
    pub async fn finish<R: Message>(
        &self,
        mut tx: Transaction<'static, Postgres>,
        response: &R,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        self.record(&mut tx, response, now).await?;
        tx.commit().await?;
        Ok(())
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
        .bind(&self.method)
        .bind(&self.request_id)
        .bind(&self.request_hash)
        .bind(response.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Begins an idempotent write in a use case returning `Result<R>`: evaluates to the fresh
/// transaction, or returns `Ok` with the earlier call's response from the enclosing function
/// (as `?` returns its error). `crm_kit::begin_write!(key, &pool)`.
#[macro_export]
macro_rules! begin_write {
    ($key:expr, $pool:expr) => {
        match $key.begin($pool).await? {
            $crate::idempotency::Begun::Replay(previous) => return Ok(previous),
            $crate::idempotency::Begun::Fresh(tx) => tx,
        }
    };
}
