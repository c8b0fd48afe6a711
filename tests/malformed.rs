//! Malformed traffic at the gateway (issue 21, point 4): random bytes after the HTTP/2
//! preface, plain garbage, a gRPC message cut short, a frame claiming more than the size
//! limit, and 10,000 requests started and reset before their body ends (as many at once as
//! the server's stream limit admits). The gateway drops what is broken and answers the next
//! well-formed call.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use crm_kit::{Clock, testing};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A request body that ends only when its sender is dropped.
type Open = StreamBody<
    tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, std::convert::Infallible>>,
>;

async fn healthy(addr: SocketAddr) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the gateway still accepts connections");
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .expect("the gateway still answers")
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);
}

/// A gRPC call on `send` with `body` as its raw request body: the grpc-status.
async fn raw(
    send: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
    body: Bytes,
) -> Code {
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(body))
        .unwrap();
    send.ready().await.unwrap();
    let response = send.send_request(request).await.expect("an answer");
    let headers = response.headers().clone();
    let trailers = response
        .into_body()
        .collect()
        .await
        .map(|c| c.trailers().cloned().unwrap_or_default())
        .unwrap_or_default();
    tonic::Status::from_header_map(&headers)
        .or_else(|| tonic::Status::from_header_map(&trailers))
        .map_or(Code::Unknown, |s| s.code())
}

async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    send
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frames_cut_messages_and_ten_thousand_reset_streams_leave_the_gateway_serving() {
    let mut env = testing::test_env().await;
    env.settings.server.max_message_bytes = 64 * 1024;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let addr = running.addrs["gateway"];

    // garbage, with and without the HTTP/2 preface: the connection is closed, nothing else
    for preface in [&b""[..], b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut garbage = preface.to_vec();
        garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let _ = stream.write_all(&garbage).await;
        let mut sink = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink))
            .await
            .expect("the gateway closes a connection that makes no sense")
            .ok();
    }
    healthy(addr).await;

    let mut send = h2(addr).await;
    let login = "/crm.gateway.v1.AuthService/Login";
    // a message cut short: the prefix says 1,000 bytes, 10 come and the stream ends
    let mut cut = vec![0, 0, 0, 0x03, 0xe8];
    cut.extend_from_slice(&[0x0a; 10]);
    let code = raw(&mut send, addr, login, Bytes::from(cut)).await;
    assert!(
        matches!(code, Code::InvalidArgument | Code::Internal | Code::Unknown),
        "a cut message is refused: {code:?}"
    );
    // a prefix claiming more than the limit, with nothing behind it
    let code = raw(
        &mut send,
        addr,
        login,
        Bytes::from_static(&[0, 0x7f, 0xff, 0xff, 0xff]),
    )
    .await;
    assert_eq!(code, Code::ResourceExhausted, "past the size limit");
    // a compressed flag with no compression agreed
    let code = raw(&mut send, addr, login, Bytes::from_static(&[1, 0, 0, 0, 0])).await;
    assert_ne!(code, Code::Ok);
    healthy(addr).await;

    // 10,000 streams opened and reset before their request ends, 500 at a time
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send_open, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Open>(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut opened = 0;
    for _ in 0..20 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..500 {
            let mut send = send_open.clone();
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let request = http::Request::post(format!("http://{addr}{login}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(StreamBody::new(
                    tokio_stream::wrappers::ReceiverStream::new(rx),
                ))
                .unwrap();
            batch.spawn(async move {
                let _ = send.ready().await;
                // dropped unanswered (the body never ends): the client resets the stream
                let _ = tokio::time::timeout(Duration::from_millis(20), send.send_request(request))
                    .await;
                drop(tx);
            });
            opened += 1;
        }
        while batch.join_next().await.is_some() {}
    }
    assert_eq!(opened, 10_000);
    healthy(addr).await;
    // and a well-formed call on a new connection is answered as always
    let mut send = h2(addr).await;
    let code = raw(&mut send, addr, login, Bytes::from_static(&[0, 0, 0, 0, 0])).await;
    assert_eq!(
        code,
        Code::Unauthenticated,
        "an empty log-in is refused, as ever"
    );
}
