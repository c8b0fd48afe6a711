//! The import (C-2).

use super::*;

#[tokio::test]
async fn a_gbk_file_streamed_in_pieces_is_imported_with_a_report_for_every_row_and_once_only() {
    let mut app = spawn_app().await;
    let existing = app.create(sample("上海精工电子有限公司")).await; // phone +86 138-0013-8000
    let text = "客户名称,区域,联系人,联系电话,邮箱,年服务费\n\
                杭州云帆软件股份有限公司,华东,陈丽,0571-8765 4321,chenli@yunfan.example.cn,6000\n\
                杭州云帆软件,华东,陈丽,0571-8765 4321,,\n\
                上海精工电子,华东,王晓明,13800138000,,\n\
                南京长江物流集团,华东,刘强,12,,\n\
                宁波港信息,华东,,,,,多出一列\n\
                \"广州 \"\"南方\"\" 贸易\",华南,林芳,020-3888 9999,lin@nanfang.example.cn,\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    let import = app.upload("import-1", &gbk, 13).await.unwrap();
    assert_eq!(import.state(), pb::ImportState::Done);
    assert_eq!(import.encoding, "gbk");
    assert_eq!(
        (
            import.rows,
            import.accepted,
            import.rejected,
            import.duplicates
        ),
        (6, 2, 2, 2)
    );
    let rows = app.import_rows(&import.id).await;
    let statuses: Vec<(i64, pb::ImportRowStatus)> =
        rows.iter().map(|r| (r.row_number, r.status())).collect();
    use pb::ImportRowStatus::{Accepted, Duplicate, Rejected};
    assert_eq!(
        statuses,
        [
            (1, Accepted),
            (2, Duplicate),
            (3, Duplicate),
            (4, Rejected),
            (5, Rejected),
            (6, Accepted)
        ]
    );
    assert_eq!(rows[1].duplicate_of_row, 1, "{}", rows[1].reason);
    assert_eq!(rows[2].duplicate_of_customer_id, existing.id);
    assert_eq!(rows[3].column, "contact_phone");
    assert_eq!(rows[4].column, "row");
    let created = app
        .client
        .get_customer(pb::GetCustomerRequest {
            id: rows[0].customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(created.display_name, "杭州云帆软件股份有限公司");
    assert_eq!(created.tier(), pb::Tier::Core, "its fee makes it core");
    assert_eq!(created.source_channel(), pb::SourceChannel::Import);
    let quoted = app
        .client
        .get_customer(pb::GetCustomerRequest {
            id: rows[5].customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(quoted.display_name, "广州 \"南方\" 贸易");
    // each region's sales manager is told of its new, unassigned customers
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let done: Vec<(String, i64)> = envelopes
        .iter()
        .map(|e| <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap())
        .filter(|e| e.r#type == "customers.import_done")
        .map(|e| {
            let data: pb::ImportEvent =
                prost::Message::decode(e.payload.unwrap().value.as_slice()).unwrap();
            (data.region, data.accepted_in_region)
        })
        .collect();
    assert_eq!(done, [("华东".to_string(), 1), ("华南".to_string(), 1)]);
    // the report as CSV, every row in it
    let mut stream = app
        .client
        .download_import_report(pb::DownloadImportReportRequest {
            import_id: import.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut csv_bytes = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        csv_bytes.extend(chunk.data);
    }
    assert!(
        csv_bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "a BOM for Excel"
    );
    let report = String::from_utf8(csv_bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0].starts_with("row,status,customer_id,column,reason"));
    assert!(lines[2].starts_with("2,duplicate,,,"), "{}", lines[2]);
    assert!(
        lines[4].starts_with("4,rejected,,contact_phone,"),
        "{}",
        lines[4]
    );
    // the same request again: the same import; the same file again: nothing new
    let again = app.upload("import-1", &gbk, 13).await.unwrap();
    assert_eq!(again.id, import.id);
    let customers = app.count("customers").await;
    let second = app.upload("import-2", &gbk, 4096).await.unwrap();
    assert_eq!(
        (second.accepted, second.duplicates, second.rejected),
        (0, 4, 2)
    );
    assert_eq!(app.count("customers").await, customers);
}

#[tokio::test]
async fn broken_files_are_refused_with_the_reason() {
    let mut app = spawn_app().await;
    // a UTF-8 file with a BOM but an unknown column
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice("name,region,fax\nA,华东,1\n".as_bytes());
    let e = app.upload("bad-1", &bom, 7).await.unwrap_err();
    assert_eq!(violations(&e), ["file"]);
    assert!(e.message().contains("unknown columns"), "{}", e.message());
    // empty
    let e = app.upload("bad-2", b"", 7).await.unwrap_err();
    assert!(
        e.message().contains("header row is missing"),
        "{}",
        e.message()
    );
    // no header first
    let e = app
        .client
        .upload_import(tokio_stream::iter(vec![pb::UploadImportRequest {
            part: Some(pb::upload_import_request::Part::Chunk(
                b"name,region\n".to_vec(),
            )),
        }]))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["header"]);
    assert_eq!(app.count("customers").await, 0);
}

#[tokio::test]
async fn an_interrupted_import_keeps_a_report_for_every_row_it_applied() {
    let app = spawn_app_with(&[("customers.import_batch_rows", "500".to_string())]).await;
    // 600 rows in one piece; the upload then stalls (the first batch of 500 is committed)
    let mut file = String::from("name,region,contact_name,contact_phone\n");
    for i in 0..600 {
        file.push_str(&format!("客户{i:04},华东,联系人{i},139{i:08}\n"));
    }
    let (send, receive) = tokio::sync::mpsc::channel(4);
    send.send(pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Header(pb::ImportHeader {
            request_id: "stalled".into(),
            file_name: "big.csv".into(),
        })),
    })
    .await
    .unwrap();
    send.send(pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Chunk(file.into_bytes())),
    })
    .await
    .unwrap();
    let mut client = app.client.clone();
    let upload = tokio::spawn(async move {
        client
            .upload_import(tokio_stream::wrappers::ReceiverStream::new(receive))
            .await
    });
    let pool = app.pool.clone();
    let progress = || {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT state, rows FROM imports WHERE request_id = 'stalled'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };
    testing::wait_until(
        "the first batch",
        std::time::Duration::from_secs(20),
        || {
            let p = progress();
            async move { p.await.is_some_and(|(_, rows)| rows == 500) }
        },
    )
    .await;
    // the client goes away: the server drops the call with it, and the import stays PROCESSING
    // until the stale window has passed without progress
    upload.abort();
    drop(send);
    app.clock.advance(time::Duration::minutes(11));
    testing::wait_until(
        "the import to fail",
        std::time::Duration::from_secs(20),
        || {
            let p = progress();
            async move {
                p.await
                    .is_some_and(|(state, _)| state == "IMPORT_STATE_FAILED")
            }
        },
    )
    .await;
    // every applied row is in the report, and only those
    let (customers, reported): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM import_rows)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((customers, reported), (500, 500));
}

#[tokio::test]
async fn an_import_whose_process_died_is_marked_failed_after_the_stale_window() {
    let app = spawn_app().await;
    let now = app.clock.now();
    sqlx::query(
        "INSERT INTO imports (id, request_id, file_name, state, encoding, rows, create_time, created_by, update_time) \
         VALUES ($1, 'killed', 'x.csv', 'IMPORT_STATE_PROCESSING', 'utf-8', 1500, $2, 'clerk', $2)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(now)
    .execute(&app.pool)
    .await
    .unwrap();
    app.clock.advance(time::Duration::minutes(11));
    let pool = app.pool.clone();
    testing::wait_until("the sweep", std::time::Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT failure FROM imports WHERE request_id = 'killed'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .starts_with("interrupted after row 1500")
        }
    })
    .await;
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_with_the_limit() {
    let app = spawn_app_with(&[("customers.import_max_bytes", "64".to_string())]).await;
    let mut file = String::from("name,region\n");
    for i in 0..10 {
        file.push_str(&format!("客户{i},华东\n"));
    }
    let e = app
        .upload("too-big", file.as_bytes(), 16)
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["file"]);
    assert!(
        e.message().contains("larger than the limit of 64 bytes"),
        "{}",
        e.message()
    );
    let state: String =
        sqlx::query_scalar("SELECT state FROM imports WHERE request_id = 'too-big'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, "IMPORT_STATE_FAILED");
}

#[tokio::test]
async fn duplicates_across_batches_written_side_by_side_and_concurrent_imports_create_once() {
    // batches of three rows: while one batch is written the next is decided, so a row's
    // earlier twin is often in a batch not yet committed
    let mut app = spawn_app_with(&[("customers.import_batch_rows", "3".to_string())]).await;
    let mut file = String::from("name,region,contact_name,contact_phone\n");
    let mut twins = Vec::new();
    for i in 1..=60i64 {
        if i % 4 == 0 {
            // the same phone as the row before, another name
            file.push_str(&format!(
                "别名{i},华东,联系人{i},+86 139-0000-{:04}\n",
                i - 1
            ));
            twins.push((i, i - 1));
        } else {
            file.push_str(&format!("客户{i}有限公司,华东,联系人{i},139{:08}\n", i));
        }
    }
    let import = app.upload("sides", file.as_bytes(), 50).await.unwrap();
    assert_eq!(
        (import.rows, import.accepted, import.duplicates),
        (60, 45, 15)
    );
    let rows = app
        .client
        .list_import_rows(pb::ListImportRowsRequest {
            import_id: import.id.clone(),
            page: Some(crm_proto::common::v1::PageRequest {
                page_size: 100,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 60, "every row reported once");
    for (row, of) in twins {
        let r = &rows[row as usize - 1];
        assert_eq!(
            (r.row_number, r.status(), r.duplicate_of_row),
            (row, pb::ImportRowStatus::Duplicate, of),
            "{}",
            r.reason
        );
    }
    let customers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE import_id IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(customers, 45);
    // the batches' events carry each new customer as a read gives it back
    let envelopes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE aggregate = $1 ORDER BY seq")
            .bind(format!("imports/{}", import.id))
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut announced = Vec::new();
    for e in envelopes {
        let event = <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap();
        if event.r#type == "customers.customers_imported" {
            let data: pb::CustomersImportedEvent =
                prost::Message::decode(event.payload.unwrap().value.as_slice()).unwrap();
            announced.extend(data.customers);
        }
    }
    assert_eq!(announced.len(), 45);
    for customer in announced {
        let read = app
            .client
            .clone()
            .get_customer(pb::GetCustomerRequest {
                id: customer.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .customer
            .unwrap();
        assert_eq!(customer, read);
    }

    // the same new file twice at once: one import creates each customer, the other finds it
    let mut other = String::from("name,region,contact_name,contact_phone\n");
    for i in 1..=30 {
        other.push_str(&format!("新客户{i},华南,联系人{i},138{i:08}\n"));
    }
    let (a, b) = tokio::join!(
        app.upload("twice-a", other.as_bytes(), 40),
        app.upload("twice-b", other.as_bytes(), 40)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.accepted + b.accepted, a.duplicates + b.duplicates),
        (30, 30)
    );
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM customers WHERE region = '华南'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(created, 30);
}

#[tokio::test]
async fn an_import_waiting_for_another_is_kept_alive_and_runs_when_the_other_is_done() {
    let app = spawn_app().await;
    // another import holds the lock (as a running import's decider does)
    let mut other = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.import'))")
        .execute(&mut *other)
        .await
        .unwrap();
    let file = "name,region,contact_name,contact_phone\n等待客户,华东,联系人,13700000001\n";
    let waiting = tokio::spawn(upload(app.client.clone(), "waiting", file.as_bytes(), 1024));
    let pool = app.pool.clone();
    testing::wait_until("the import", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM imports WHERE request_id = 'waiting'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        }
    })
    .await;
    app.clock.advance(time::Duration::minutes(1));
    // while it waits it is marked alive (every 10 s), though it has no rows yet
    testing::wait_until("a sign of life", std::time::Duration::from_secs(30), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT update_time > create_time AND rows = 0 AND state = 'IMPORT_STATE_PROCESSING' \
                 FROM imports WHERE request_id = 'waiting'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
            .unwrap_or(false)
        }
    })
    .await;
    assert!(!waiting.is_finished());
    other.rollback().await.unwrap();
    let import = waiting.await.unwrap().unwrap();
    assert_eq!(
        (import.state(), import.accepted),
        (pb::ImportState::Done, 1)
    );
}
