//! The import's report (C-2): one import, its rows page by page, and the whole report as CSV
//! streamed in chunks.

use crm_kit::{Error, Result};
use crm_proto::customers::v1 as pb;
use uuid::Uuid;

use super::{import_not_found, store};
use crate::service::Customers;

impl Customers {
    /// One import.
    pub async fn get_import(&self, id: Uuid) -> Result<pb::Import> {
        let mut conn = self.pool.acquire().await?;
        store::get_import(&mut conn, Some(id), None)
            .await?
            .ok_or_else(|| import_not_found(id))
    }

    /// A page of an import's report.
    pub async fn list_import_rows(
        &self,
        r: &pb::ListImportRowsRequest,
    ) -> Result<pb::ListImportRowsResponse> {
        let id = Uuid::parse_str(&r.import_id)
            .map_err(|_| Error::invalid("import_id", "is not a valid id"))?;
        let status = match pb::ImportRowStatus::try_from(r.status) {
            Ok(pb::ImportRowStatus::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => return Err(Error::invalid("status", "is not a row status")),
        };
        let filter = format!("{id}|{}", r.status);
        let page = self.pager.read::<i64>(r.page.as_ref(), &filter)?;
        let mut conn = self.pool.acquire().await?;
        if store::get_import(&mut conn, Some(id), None)
            .await?
            .is_none()
        {
            return Err(import_not_found(id));
        }
        let mut rows = store::import_rows(&mut conn, id, status, page.after, page.limit()).await?;
        let next = self
            .pager
            .finish(&page, &mut rows, &filter, |r| r.row_number);
        Ok(pb::ListImportRowsResponse {
            rows,
            page: Some(next),
        })
    }

    /// The report as CSV, page by page: the first chunk has the BOM and the header.
    pub async fn report_csv(
        &self,
        id: Uuid,
    ) -> Result<tokio::sync::mpsc::Receiver<std::result::Result<Vec<u8>, Error>>> {
        let mut conn = self.pool.acquire().await?;
        if store::get_import(&mut conn, Some(id), None)
            .await?
            .is_none()
        {
            return Err(import_not_found(id));
        }
        let (send, receive) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut after = None;
            let mut first = true;
            loop {
                let page = match store::import_rows(&mut conn, id, None, after, 1000).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = send.send(Err(e)).await;
                        return;
                    }
                };
                let chunk = csv_chunk(&page, first);
                first = false;
                let done = page.len() < 1000;
                after = page.last().map(|r| r.row_number);
                if send.send(chunk).await.is_err() || done {
                    break;
                }
            }
        });
        Ok(receive)
    }
}

/// Rows of the report as CSV (with the BOM and header when `first`).
fn csv_chunk(rows: &[pb::ImportRow], first: bool) -> std::result::Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    if first {
        out.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
    }
    let mut w = csv::Writer::from_writer(out);
    let internal = |e: csv::Error| Error::Internal(e.into());
    if first {
        w.write_record([
            "row",
            "status",
            "customer_id",
            "column",
            "reason",
            "duplicate_of_row",
            "duplicate_of_customer_id",
        ])
        .map_err(internal)?;
    }
    for r in rows {
        let status = r
            .status()
            .as_str_name()
            .trim_start_matches("IMPORT_ROW_STATUS_")
            .to_lowercase();
        let dup_row = if r.duplicate_of_row > 0 {
            r.duplicate_of_row.to_string()
        } else {
            String::new()
        };
        w.write_record([
            r.row_number.to_string().as_str(),
            &status,
            &r.customer_id,
            &r.column,
            &r.reason,
            &dup_row,
            &r.duplicate_of_customer_id,
        ])
        .map_err(internal)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(anyhow::anyhow!("report: {e}")))
}
