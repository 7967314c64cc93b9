//! Hostile and broken peers on 127.0.0.1: each ends as one `errors` entry
//! with a reason a person understands, within the timeout, never a panic,
//! a hang or a silent absence of results.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trustwatch_tests::tlsfixtures::scan;

/// How each connection is treated.
#[derive(Clone, Copy)]
enum Peer {
    Garbage,
    TruncatedRecord,
    HugeCertificate,
    SlowStream,
    ResetMidHandshake,
    Silent,
    Http,
}

fn server_hello() -> Vec<u8> {
    // ServerHello: TLS 1.2, random, empty session id, suite 0xc02f, null compression.
    let mut body = vec![0x03, 0x03];
    body.extend([7u8; 32]);
    body.extend([0x00, 0xc0, 0x2f, 0x00]);
    let mut hs = vec![0x02, 0x00, 0x00, body.len() as u8];
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x03, 0x00, hs.len() as u8];
    rec.extend(hs);
    rec
}

async fn serve(mut c: TcpStream, peer: Peer) {
    let mut hello = vec![0u8; 4096];
    // Read the hello (or what has arrived of it).
    let _ = tokio::time::timeout(Duration::from_secs(2), c.read(&mut hello)).await;
    match peer {
        Peer::Garbage => {
            let _ = c
                .write_all(b"\x00\x01\x02 this is not TLS at all \xff\xfe")
                .await;
        }
        Peer::TruncatedRecord => {
            // A handshake record announcing 200 bytes, of which 12 come.
            let _ = c
                .write_all(&[
                    0x16, 0x03, 0x03, 0x00, 0xc8, 0x02, 0x00, 0x00, 0x46, 0x03, 0x03, 1, 2,
                ])
                .await;
        }
        Peer::HugeCertificate => {
            let mut out = server_hello();
            // Certificate message announcing 16 MiB - 1, in records of 16 KiB.
            let mut first = vec![0x0b, 0xff, 0xff, 0xff];
            first.extend(vec![0x30; 16_380]);
            out.extend([0x16, 0x03, 0x03]);
            out.extend((first.len() as u16).to_be_bytes());
            out.extend(first);
            let _ = c.write_all(&out).await;
            let filler = vec![0x30u8; 16_384];
            let mut rec = vec![0x16, 0x03, 0x03, 0x40, 0x00];
            rec.extend(filler);
            for _ in 0..1024 {
                if c.write_all(&rec).await.is_err() {
                    break;
                }
            }
        }
        Peer::SlowStream => {
            let mut bytes = server_hello();
            bytes.extend(std::iter::repeat_n(0x16u8, 100_000));
            for b in bytes {
                if c.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        }
        Peer::ResetMidHandshake => {
            let sh = server_hello();
            let _ = c.write_all(&sh[..20]).await;
            let _ = c.flush().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Linger 0: close() sends a reset, not a FIN.
            let _ = c.set_zero_linger();
            drop(c);
            return;
        }
        Peer::Silent => {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Peer::Http => {
            let _ = c
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    }
    let _ = c.shutdown().await;
}

async fn start(peer: Peer) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((c, _)) = l.accept().await else { break };
            tokio::spawn(serve(c, peer));
        }
    });
    port
}

/// Scans `target` with a 1.5 s connection timeout; returns the document
/// and how long the scan took.
async fn scan_it(target: String) -> (Value, Duration, String) {
    tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        let (doc, out) = scan(&[
            &target,
            "--timeout-ms",
            "1500",
            "--endpoint-timeout-s",
            "20",
        ]);
        (
            doc,
            t0.elapsed(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn assert_error(peer: Option<Peer>, words: &[&str]) {
    let port = match peer {
        Some(p) => start(p).await,
        None => {
            // A port nothing listens on.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        }
    };
    let target = format!("127.0.0.1:{port}");
    let (doc, took, stderr) = scan_it(target.clone()).await;
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(doc["assets"], serde_json::json!([]), "{doc:#}");
    assert_eq!(doc["findings"], serde_json::json!([]), "{doc:#}");
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{doc:#}");
    assert_eq!(errors[0]["target"], target.as_str());
    assert_eq!(errors[0]["collector"], "tls");
    let reason = errors[0]["reason"].as_str().unwrap();
    assert!(
        words.iter().any(|w| reason.contains(w)),
        "reason {reason:?} names none of {words:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_closed_port_is_an_error_saying_connection_refused() {
    assert_error(None, &["connection refused"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_garbage_answer_is_an_error_saying_not_tls() {
    assert_error(Some(Peer::Garbage), &["does not speak TLS"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_http_service_is_an_error_naming_http() {
    assert_error(Some(Peer::Http), &["HTTP response"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_truncated_record_is_an_error_not_a_hang() {
    assert_error(Some(Peer::TruncatedRecord), &["middle of its answer"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_16_mib_certificate_is_refused_from_its_header() {
    assert_error(Some(Peer::HugeCertificate), &["too large"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_never_ending_slow_stream_ends_at_the_deadline() {
    assert_error(Some(Peer::SlowStream), &["deadline"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_reset_mid_handshake_is_an_error() {
    assert_error(Some(Peer::ResetMidHandshake), &["reset"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_silent_peer_is_an_error_after_the_timeout() {
    assert_error(Some(Peer::Silent), &["sent nothing"]).await;
}

#[test]
fn tls_scan_refuses_bad_arguments_with_exit_2() {
    let agent = trustwatch_tests::bin_path("trustwatch-agent");
    for args in [
        vec!["scan", "tls"],
        vec!["scan", "tls", "nohost"],
        vec!["scan", "tls", "a:99999"],
        vec!["scan", "tls", "a:443", "--concurrency", "0"],
        vec!["scan", "tls", "a:443", "--ca", "/nonexistent/root.pem"],
    ] {
        let out = std::process::Command::new(&agent)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
