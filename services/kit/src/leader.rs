//! Leadership among replicas: a Postgres session advisory lock held on a connection of its own.
//!
//! The connection is taken out of the pool for good ([`sqlx::pool::PoolConnection::detach`]),
//! so a lock can never travel back into the pool with it and stay held by whatever borrows that
//! connection next (the defect of issue 14: a relay that met an error returned its connection,
//! lock and all, to the pool, and its retry on another connection never got the lock again).
//! Every way out lets the lock go: [`Leader::release`] unlocks and closes; dropping a
//! [`Leader`] — on an error, a panic or a cancelled task — closes the socket, and Postgres
//! releases a session's locks when the session ends.

use sqlx::{Connection, PgConnection, PgPool};

/// A held leadership lock and the one connection that holds it.
pub struct Leader {
    conn: PgConnection,
    key: String,
}

/// Tries for the lock named `key` (e.g. `crm.outbox.relay.customers`) without waiting: the
/// held lock, or `None` when another session holds it (the connection tried with is closed).
pub async fn try_lead(pool: &PgPool, key: &str) -> Result<Option<Leader>, sqlx::Error> {
    let mut conn = pool.acquire().await?.detach();
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(&mut conn)
        .await?;
    if got {
        Ok(Some(Leader {
            conn,
            key: key.to_string(),
        }))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

impl Leader {
    /// Checks that the lock is still held: its session is alive (an error means it is lost —
    /// the server ended the session — and the caller must stop acting as leader).
    pub async fn check(&mut self) -> Result<(), sqlx::Error> {
        self.conn.ping().await
    }

    /// Lets the lock go and closes its connection.
    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.key)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
