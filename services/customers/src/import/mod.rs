//! The customer import (C-2): a CSV file in the template (`rules`) streamed in, read as it
//! arrives, its rows processed in batches — each batch one transaction writing the customers it
//! accepts together with every row's report entry — so memory stays bounded and no applied row
//! is ever missing from the report. Duplicates are found against the rows accepted earlier in
//! the same file and against existing customers, so running the same file again creates nothing.

use crm_kit::{Error, Result, audit, context::Call};
use crm_proto::customers::v1 as pb;
use uuid::Uuid;

pub mod file;
mod pending;
mod report;
pub mod rules;
mod store;
pub mod template;

use file::{Decoder, Encoding, Splitter};
use pending::Pending;
pub use rules::shown_key;
use rules::{Known, Verdict};
use store::Imported;
use template::Header;

use crate::{
    records::rules::CustomerFields,
    service::{CUSTOMERS_IMPORTED, Customers, IMPORT_DONE, event},
};

pub(super) fn import_not_found(id: impl ToString) -> Error {
    Error::NotFound {
        kind: "import",
        id: id.to_string(),
    }
}

/// A checked ImportHeader: the request id and the file's name.
pub fn parse_header(h: Option<&pb::ImportHeader>) -> Result<(String, String)> {
    let mut v = crm_kit::Violations::new();
    let Some(h) = h else {
        return Err(Error::invalid(
            "header",
            "the first message must be the header (request_id, file_name)",
        ));
    };
    if h.request_id.trim().is_empty() || h.request_id.chars().count() > 100 {
        v.add("header.request_id", "must be 1 to 100 characters");
    }
    if h.file_name.trim().is_empty() || h.file_name.chars().count() > 200 {
        v.add("header.file_name", "must be 1 to 200 characters");
    }
    v.finish()?;
    Ok((
        h.request_id.trim().to_string(),
        h.file_name.trim().to_string(),
    ))
}

/// One row read: its number in the file, and its checked fields or why it is refused.
type Parsed = (
    i64,
    std::result::Result<CustomerFields, Vec<template::Rejection>>,
);

/// A decided batch: the customers to create and the report of every row.
pub(super) struct Decided {
    created: Vec<Imported>,
    report: Vec<pb::ImportRow>,
    /// The keys this batch put in [`Pending`], taken out when it is committed.
    pending_keys: Vec<String>,
}

/// What a file's reading has reached: rows are parsed as they arrive and handed to the writer
/// a batch at a time.
struct Reading {
    header: Option<Header>,
    row: i64,
    batch: Vec<Parsed>,
    batch_rows: usize,
    writer: tokio::sync::mpsc::Sender<Vec<Parsed>>,
}

impl Customers {
    /// Imports a file streamed as `chunks` (the header already read).
    pub async fn import(
        &self,
        request_id: String,
        file_name: String,
        mut chunks: tonic::Streaming<pb::UploadImportRequest>,
        call: &Call,
    ) -> Result<pb::UploadImportResponse> {
        let mut conn = self.pool.acquire().await?;
        if let Some(previous) = store::get_import(&mut conn, None, Some(&request_id)).await? {
            return Ok(pb::UploadImportResponse {
                import: Some(previous),
            });
        }
        store::ensure_key_statistics(&mut conn).await?;
        let id = Uuid::now_v7();
        let now = self.clock.now();
        store::insert_import(
            &mut conn,
            id,
            &request_id,
            &file_name,
            now,
            &call.principal.subject,
        )
        .await?;
        drop(conn);
        let outcome = self.read(id, &mut chunks, call).await;
        let mut conn = self.pool.acquire().await?;
        let (state, encoding, failure) = match &outcome {
            Ok(encoding) => (pb::ImportState::Done, encoding.clone(), String::new()),
            Err((encoding, failure)) => (
                pb::ImportState::Failed,
                encoding.clone(),
                failure.to_string(),
            ),
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        store::set_import_state(&mut tx, id, state, &encoding, &failure).await?;
        let import = store::get_import(&mut tx, Some(id), None)
            .await?
            .ok_or_else(|| import_not_found(id))?;
        // each region's sales manager hears of the new, unassigned customers (C-3)
        for (region, accepted) in store::import_regions(&mut tx, id).await? {
            let payload = crm_kit::events::Payload::of(&pb::ImportEvent {
                import: Some(import.clone()),
                region,
                accepted_in_region: accepted,
            });
            let aggregate = format!("imports/{id}");
            crm_kit::events::publish(
                &mut tx,
                call,
                self.clock.now(),
                event(IMPORT_DONE, &aggregate, payload),
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(import.id = %id, rows = import.rows, accepted = import.accepted, state = ?state, "import finished");
        match outcome {
            Err((_, e @ Error::InvalidArgument(_))) => Err(e),
            _ => Ok(pb::UploadImportResponse {
                import: Some(import),
            }),
        }
    }

    /// Reads the stream to its end; the encoding name, or it and why the file stopped. Three
    /// stages run side by side, joined by bounded channels so memory stays a few batches: the
    /// reader parses rows into batches, the decider decides each batch in file order against
    /// the committed customers and the batches still being written, and two writers commit
    /// decided batches.
    async fn read(
        &self,
        id: Uuid,
        chunks: &mut tonic::Streaming<pb::UploadImportRequest>,
        call: &Call,
    ) -> std::result::Result<String, (String, Error)> {
        let (send_rows, mut rows) = tokio::sync::mpsc::channel::<Vec<Parsed>>(2);
        let (send_decided, decided) = tokio::sync::mpsc::channel::<Decided>(1);
        let pending = &Pending::default();
        // each stage owns its receiver, so a stage that stops stops the one feeding it
        let decider = async move {
            // the lock is held while this import has batches to decide or being written, and
            // let go when it waits for the client with everything committed
            let mut lookups: Option<sqlx::Transaction<'static, sqlx::Postgres>> = None;
            loop {
                let batch = match rows.try_recv() {
                    Ok(batch) => batch,
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                        if let Some(tx) = lookups.take() {
                            pending.drained().await;
                            tx.rollback().await?;
                        }
                        match rows.recv().await {
                            Some(batch) => batch,
                            None => break,
                        }
                    }
                };
                let tx = match &mut lookups {
                    Some(tx) => tx,
                    None => lookups.insert(self.lock_imports(id).await?),
                };
                let next = self.decide_batch(tx, id, batch, pending).await?;
                if send_decided.send(next).await.is_err() {
                    break;
                }
            }
            drop(send_decided);
            if let Some(tx) = lookups {
                pending.drained().await;
                tx.rollback().await?;
            }
            Ok::<(), Error>(())
        };
        let writers = async move {
            // the receiver is dropped with this future, so a decider waiting to send stops
            let decided = tokio::sync::Mutex::new(decided);
            let writer = || async {
                loop {
                    let Some(batch) = decided.lock().await.recv().await else {
                        return Ok::<(), Error>(());
                    };
                    if let Err(e) = self.write_batch(id, &batch, call).await {
                        pending.abandon();
                        return Err(e);
                    }
                    pending.done(&batch);
                }
            };
            tokio::try_join!(writer(), writer()).map(|_| ())
        };
        let (read, decided, written) =
            tokio::join!(self.read_rows(chunks, send_rows), decider, writers);
        match (read, decided.and(written)) {
            // a failure to decide or write stopped the reading
            (Err((encoding, _)), Err(e)) | (Ok(encoding), Err(e)) => Err((encoding, e)),
            (read, Ok(())) => read,
        }
    }

    /// Reads, decodes and parses the rows, sending them to `writer` a batch at a time.
    async fn read_rows(
        &self,
        chunks: &mut tonic::Streaming<pb::UploadImportRequest>,
        writer: tokio::sync::mpsc::Sender<Vec<Parsed>>,
    ) -> std::result::Result<String, (String, Error)> {
        let mut reading = Reading {
            header: None,
            row: 0,
            batch: Vec::new(),
            batch_rows: self.policy.import_batch_rows,
            writer,
        };
        let read = self.read_all(chunks, &mut reading).await;
        if read.is_err() {
            // the whole rows read before the failure are imported, as its message says
            let _ = Self::flush(&mut reading).await;
        }
        read
    }

    /// The loop of `read_rows`.
    async fn read_all(
        &self,
        chunks: &mut tonic::Streaming<pb::UploadImportRequest>,
        reading: &mut Reading,
    ) -> std::result::Result<String, (String, Error)> {
        let mut decoder: Option<(Encoding, Decoder)> = None;
        let mut splitter = Splitter::default();
        let mut total: u64 = 0;
        let max = self.policy.import_max_bytes;
        let name = |d: &Option<(Encoding, Decoder)>| match d {
            Some((Encoding::Utf8, _)) => "utf-8".to_string(),
            Some((Encoding::Utf8Bom, _)) => "utf-8 with BOM".to_string(),
            Some((Encoding::Gbk, _)) => "gbk".to_string(),
            None => String::new(),
        };
        loop {
            let bytes = match chunks.message().await.transpose() {
                None => break,
                Some(Err(status)) => {
                    let e = Error::precondition(
                        "UPLOAD_INTERRUPTED",
                        format!(
                            "the upload stopped after row {} ({}); the rows before are imported: upload the file again, they become duplicates",
                            reading.row,
                            status.message()
                        ),
                    );
                    return Err((name(&decoder), e));
                }
                Some(Ok(pb::UploadImportRequest {
                    part: Some(pb::upload_import_request::Part::Chunk(bytes)),
                })) => bytes,
                Some(Ok(_)) => {
                    let e = Error::invalid("chunk", "after the header, only chunks may follow");
                    return Err((name(&decoder), e));
                }
            };
            total += bytes.len() as u64;
            if total > max {
                let e = Error::invalid(
                    "file",
                    format!(
                        "is larger than the limit of {max} bytes (customers.import_max_bytes); rows up to {} were imported: split the file",
                        reading.row
                    ),
                );
                return Err((name(&decoder), e));
            }
            let (_, d) = decoder.get_or_insert_with(|| {
                let encoding = Encoding::detect(&bytes);
                (encoding, Decoder::new(encoding))
            });
            let mut text = String::new();
            d.feed(&bytes, &mut text, false);
            if d.malformed {
                let e = Error::invalid(
                    "file",
                    format!(
                        "holds bytes that are neither UTF-8 nor GBK after row {}",
                        reading.row
                    ),
                );
                return Err((name(&decoder), e));
            }
            if let Some(block) = splitter.push(&text) {
                Self::take(reading, &block)
                    .await
                    .map_err(|e| (name(&decoder), e))?;
            }
        }
        let mut text = String::new();
        if let Some((_, d)) = decoder.as_mut() {
            d.feed(&[], &mut text, true);
        }
        let mut last = splitter.push(&text).unwrap_or_default();
        last.push_str(&splitter.finish());
        Self::take(reading, &last)
            .await
            .map_err(|e| (name(&decoder), e))?;
        Self::flush(reading)
            .await
            .map_err(|e| (name(&decoder), e))?;
        if reading.header.is_none() {
            return Err((
                name(&decoder),
                Error::invalid("file", "is empty: the header row is missing"),
            ));
        }
        Ok(name(&decoder))
    }

    /// Takes a block of whole records: the header first, then rows in batches.
    async fn take(reading: &mut Reading, block: &str) -> Result<()> {
        let records = file::records(block).map_err(|e| {
            Error::invalid("file", format!("is not CSV after row {}: {e}", reading.row))
        })?;
        for record in records {
            if reading.header.is_none() {
                reading.header = Some(Header::parse(&record)?);
                continue;
            }
            reading.row += 1;
            let Some(header) = reading.header.as_ref() else {
                continue;
            };
            reading.batch.push((reading.row, header.row(&record)));
            if reading.batch.len() >= reading.batch_rows {
                Self::flush(reading).await?;
            }
        }
        Ok(())
    }

    /// Hands the batch read so far to the writer.
    async fn flush(reading: &mut Reading) -> Result<()> {
        if reading.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut reading.batch, Vec::with_capacity(reading.batch_rows));
        reading
            .writer
            .send(batch)
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the import's writer stopped")))
    }

    /// A transaction holding the imports' lock: one import at a time decides, so each finds
    /// the duplicates of the others. Tried, not waited for, so an import waiting for another
    /// holds no connection the other's writers need; while it waits, import `id` is marked
    /// alive every 10 s, so the sweep does not take it for interrupted.
    async fn lock_imports(&self, id: Uuid) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut alive = std::time::Instant::now();
        loop {
            let mut tx = crm_kit::db::begin(&self.pool).await?;
            let locked: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || '.import'))",
            )
            .fetch_one(&mut *tx)
            .await?;
            if locked {
                return Ok(tx);
            }
            if alive.elapsed() >= std::time::Duration::from_secs(10) {
                store::touch_import(&mut tx, id, self.clock.now()).await?;
                tx.commit().await?;
                alive = std::time::Instant::now();
            } else {
                tx.rollback().await?;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Decides a batch: one look-up of the committed customers holding any of its keys, with
    /// the keys of the batches still being written taken first (before the look-up, so a batch
    /// committing in between is seen one way or the other).
    async fn decide_batch(
        &self,
        lookups: &mut sqlx::PgConnection,
        id: Uuid,
        parsed: Vec<Parsed>,
        pending: &Pending,
    ) -> Result<Decided> {
        let keys: Vec<String> = parsed
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok())
            .flat_map(rules::dedup_keys)
            .collect();
        let mut matches = pending.matching(&keys);
        matches.extend(store::customers_with_keys(lookups, id, &keys).await?);
        let known = Known::by_key(matches);
        let mut report = Vec::with_capacity(parsed.len());
        let mut created = Vec::new();
        for (row, verdict) in rules::decide(parsed, &known) {
            let mut r = pb::ImportRow {
                row_number: row,
                ..Default::default()
            };
            match verdict {
                Verdict::Rejected(rejections) => {
                    r.status = pb::ImportRowStatus::Rejected.into();
                    r.column.clone_from(&rejections[0].column);
                    r.reason = rejections
                        .iter()
                        .map(|r| format!("{}: {}", r.column, r.reason))
                        .collect::<Vec<_>>()
                        .join("; ");
                }
                Verdict::DuplicateOfRow { row: earlier, key } => {
                    r.status = pb::ImportRowStatus::Duplicate.into();
                    r.duplicate_of_row = earlier;
                    r.reason = format!("same {} as row {earlier}", shown_key(&key));
                }
                Verdict::DuplicateOfCustomer { customer, key } => {
                    r.status = pb::ImportRowStatus::Duplicate.into();
                    r.duplicate_of_customer_id = customer.to_string();
                    r.reason = format!("same {} as customer {customer}", shown_key(&key));
                }
                Verdict::Accepted(fields) => {
                    let mut fields = *fields;
                    let tier_reason = self.settle_tier(&mut fields, None);
                    let id = Uuid::now_v7();
                    r.status = pb::ImportRowStatus::Accepted.into();
                    r.customer_id = id.to_string();
                    created.push(Imported {
                        id,
                        row,
                        fields,
                        tier_reason,
                    });
                }
            }
            report.push(r);
        }
        let mut decided = Decided {
            created,
            report,
            pending_keys: Vec::new(),
        };
        pending.add(&mut decided);
        Ok(decided)
    }

    /// Writes a decided batch in one transaction: customers and report rows commit together.
    /// The work is per batch, not per row: one insert per table, one event for the batch's new
    /// customers.
    async fn write_batch(&self, id: Uuid, batch: &Decided, call: &Call) -> Result<()> {
        let Decided {
            created, report, ..
        } = batch;
        let now = self.clock.now();
        let actor = call.principal.subject.as_str();
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        if !created.is_empty() {
            store::insert_imported(&mut tx, id, created, now, actor).await?;
            let audited: Vec<(String, Vec<&str>)> = created
                .iter()
                .map(|c| (format!("customers/{}", c.id), c.fields.present()))
                .collect();
            audit::record_many(&mut tx, call, now, &audited).await?;
            let customers = created.iter().map(|c| c.to_proto(now, actor)).collect();
            let payload = crm_kit::events::Payload::of(&pb::CustomersImportedEvent {
                import_id: id.to_string(),
                customers,
            });
            let aggregate = format!("imports/{}", id);
            let announced = event(CUSTOMERS_IMPORTED, &aggregate, payload);
            crm_kit::events::publish(&mut tx, call, now, announced).await?;
        }
        store::insert_import_rows(&mut tx, id, report, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
/// Marks FAILED the imports left PROCESSING without progress since `stale_before` (their
/// process died); how many.
pub(crate) async fn fail_stale(
    tx: &mut sqlx::PgConnection,
    stale_before: time::OffsetDateTime,
) -> Result<u64> {
    store::fail_stale_imports(tx, stale_before).await
}
