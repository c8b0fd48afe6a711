//! The import case of `crm-bench`: a generated customer file (`generate`), then streamed through
//! the gateway of a platform running in another process (`upload`), so the server's memory is
//! its own. `deploy/bench.sh` runs a raw `COPY` of the same file beside it.

use std::{io::Write, path::Path, time::Instant};

use crm_proto::{
    customers::v1::{self as pb, customer_service_client::CustomerServiceClient},
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
};
use tokio::io::AsyncReadExt;
use tonic::transport::Channel;

/// The regions rows are spread over.
const REGIONS: &[&str] = &[
    "华东", "华北", "华南", "华中", "西南", "西北", "东北", "海外",
];

/// Writes a template file of `rows` rows: nine in ten new customers, and every tenth a
/// duplicate of an earlier row, by its name written differently (legal form, full-width,
/// spacing) or by its contact's phone in another format.
pub fn generate(path: &Path, rows: usize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        out,
        "客户名称,区域,行业,地址,联系人,联系电话,电子邮箱,标签,累计投资"
    )?;
    for i in 0..rows {
        let region = REGIONS[i % REGIONS.len()];
        if i % 10 == 9 {
            // a duplicate of row i - 4 (1-based: row i - 3), alternately by name and by phone
            let of = i - 4;
            if i % 20 == 19 {
                writeln!(
                    out,
                    "客户{of:07}科技 有限公司,{region},制造,上海市浦东新区{of}号,,,,,"
                )?;
            } else {
                writeln!(
                    out,
                    "别名{i:07}贸易,{region},零售,,王{i},+86 139-{:04}-{:04},,,",
                    of / 10_000,
                    of % 10_000
                )?;
            }
            continue;
        }
        let investment = if i % 50 == 0 {
            800_000
        } else {
            (i % 7) * 10_000
        };
        writeln!(
            out,
            "客户{i:07}科技,{region},制造,上海市浦东新区{i}号,张{i},139{:08},c{i}@example.cn,制造;华东,{investment}",
            i
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Logs in at the gateway as `user` and streams `path` as one import in chunks of 64 KiB;
/// prints the case as one JSON line.
pub async fn upload(path: &Path, gateway: &str, user: &str, password: &str) -> anyhow::Result<()> {
    let channel = Channel::from_shared(gateway.to_string())?.connect().await?;
    let token = AuthServiceClient::new(channel.clone())
        .login(gw::LoginRequest {
            username: user.into(),
            password: password.into(),
        })
        .await?
        .into_inner()
        .access_token;
    let bytes = std::fs::metadata(path)?.len();
    let mut file = tokio::fs::File::open(path).await?;
    let (send, receive) = tokio::sync::mpsc::channel(4);
    let request_id = format!("bench-{}", uuid::Uuid::now_v7());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    send.send(pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Header(pb::ImportHeader {
            request_id,
            file_name: name,
        })),
    })
    .await?;
    let reader = tokio::spawn(async move {
        loop {
            let mut chunk = vec![0; 64 * 1024];
            let n = file.read(&mut chunk).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            chunk.truncate(n);
            let part = Some(pb::upload_import_request::Part::Chunk(chunk));
            if send.send(pb::UploadImportRequest { part }).await.is_err() {
                return Ok(());
            }
        }
    });
    let mut client =
        CustomerServiceClient::with_interceptor(channel, crm_kit::testing::Bearer::new(&token))
            .max_decoding_message_size(64 << 20);
    let started = Instant::now();
    let import = client
        .upload_import(tokio_stream::wrappers::ReceiverStream::new(receive))
        .await?
        .into_inner()
        .import
        .ok_or_else(|| anyhow::anyhow!("no import in the answer"))?;
    let elapsed = started.elapsed().as_secs_f64();
    reader.await??;
    anyhow::ensure!(
        import.state() == pb::ImportState::Done,
        "the import ended {:?}: {}",
        import.state(),
        import.failure
    );
    println!(
        "{}",
        serde_json::json!({
            "op": "import",
            "clients": 1,
            "requests": import.rows,
            "bytes": bytes,
            "seconds": elapsed,
            "rps": import.rows as f64 / elapsed,
            "accepted": import.accepted,
            "duplicates": import.duplicates,
            "rejected": import.rejected,
        })
    );
    Ok(())
}
