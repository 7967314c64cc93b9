//! Probe tests: real `openssl s_server` instances and hostile peers, all on
//! 127.0.0.1 only.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::super::groups;
use super::super::parse::{Alert, EcCurve, KeyExchangeParams, ServerFlight};
use super::super::sslv2;
use super::super::suites::{self, suites_for};
use super::super::testutil::*;
use super::*;

// ---------------------------------------------------------------- fixtures

/// A key, a self-signed certificate (PEM and DER) and a 1024-bit DH group in a temp dir.
struct Material {
    dir: tempfile::TempDir,
    cert_der: Vec<u8>,
}

impl Material {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn material() -> Material {
    let dir = tempfile::tempdir().expect("temp dir");
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir.path(),
        &[
            "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
        ],
    );
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "group:dh_1024_160",
            "-out",
            "dh1024.pem",
        ],
    );
    let cert_der = std::fs::read(dir.path().join("cert.der")).expect("DER written");
    Material { dir, cert_der }
}

/// A running `openssl s_server` on 127.0.0.1 (killed on drop).
struct SServer {
    _child: Child,
    addr: SocketAddr,
    material: Material,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    l.local_addr().expect("addr").port()
}

async fn s_server(extra: &[&str]) -> SServer {
    let material = material();
    for _attempt in 0..5 {
        let port = free_port();
        let mut cmd = Command::new("openssl");
        cmd.arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(material.path("cert.pem"))
            .arg("-key")
            .arg(material.path("key.pem"))
            .arg("-www")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("openssl s_server starts");
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("ACCEPT") {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if ready {
            // Keep draining its output so it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return SServer {
                _child: child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                material,
            };
        }
    }
    panic!("openssl s_server {extra:?} did not start");
}

fn limits() -> ProbeLimits {
    ProbeLimits {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(3),
        total_timeout: Duration::from_secs(6),
        ..ProbeLimits::default()
    }
}

fn hello(v: ProtocolVersion, suites: &[u16]) -> Vec<u8> {
    client_hello(v, suites, &HelloOptions::for_host("localhost")).expect("hello builds")
}

fn flight(a: ServerAnswer) -> ServerFlight {
    match a {
        ServerAnswer::Handshake(f) => f,
        other => panic!("not a handshake: {other:?}"),
    }
}

// ------------------------------------------------------ against OpenSSL

#[tokio::test]
async fn tls12_hello_gets_server_hello_certificate_and_done_from_openssl() {
    let srv = s_server(&["-tls1_2"]).await;
    let offered = [0xc02f, 0x002f, 0x0033];
    let a = probe(
        srv.addr,
        &hello(ProtocolVersion::Tls12, &offered),
        &limits(),
    )
    .await
    .expect("answer");
    let f = flight(a);
    assert_eq!(f.server_hello.version, 0x0303);
    assert_eq!(
        f.server_hello.cipher_suite, 0xc02f,
        "OpenSSL follows our order"
    );
    assert!(f.server_hello.secure_renegotiation);
    let certs = f.certificates.expect("Certificate read");
    assert_eq!(certs, vec![srv.material.cert_der.clone()]);
    assert_eq!(
        f.key_exchange.expect("ServerKeyExchange").params,
        KeyExchangeParams::Ecdh {
            curve: EcCurve::Named(groups::X25519),
            point_len: 32
        }
    );
    assert!(f.server_hello_done);
}

#[tokio::test]
async fn whole_registry_chunks_find_a_suite_on_openssl() {
    // The first hello-sized bundle of every TLS 1.2 suite the registry knows.
    let srv = s_server(&["-tls1_2"]).await;
    let all = suites_for(ProtocolVersion::Tls12);
    let mut picked = Vec::new();
    for bundle in suites::chunks(ProtocolVersion::Tls12, &all) {
        let lim = ProbeLimits {
            stop_at: StopAt::ServerHello,
            ..limits()
        };
        match probe(srv.addr, &hello(ProtocolVersion::Tls12, &bundle), &lim).await {
            Ok(ServerAnswer::Handshake(f)) => {
                assert!(bundle.contains(&f.server_hello.cipher_suite));
                picked.push(f.server_hello.cipher_suite);
            }
            Ok(ServerAnswer::Alert(a)) => assert_eq!(a.description, 40, "{a}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(!picked.is_empty());
}

#[tokio::test]
async fn tls10_and_tls11_servers_answer_in_their_version() {
    for (flag, v) in [
        ("-tls1", ProtocolVersion::Tls10),
        ("-tls1_1", ProtocolVersion::Tls11),
    ] {
        let srv = s_server(&[flag, "-cipher", "DEFAULT:@SECLEVEL=0"]).await;
        let offered = suites::chunks(v, &suites_for(v))[0].clone();
        let f = flight(
            probe(srv.addr, &hello(v, &offered), &limits())
                .await
                .expect("answer"),
        );
        assert_eq!(f.server_hello.protocol(), Some(v));
        assert!(offered.contains(&f.server_hello.cipher_suite));
        assert!(f.certificates.is_some() && f.server_hello_done);
    }
}

#[tokio::test]
async fn tls13_hello_gets_a_tls13_server_hello() {
    let srv = s_server(&["-tls1_3"]).await;
    let opts = HelloOptions::for_host("localhost");
    let p = probe_tls13(
        srv.addr,
        &suites_for(ProtocolVersion::Tls13),
        &opts,
        &limits(),
    )
    .await
    .expect("answer");
    assert!(p.hello_retry.is_none());
    let f = flight(p.answer);
    assert_eq!(f.server_hello.selected_version, Some(0x0304));
    assert_eq!(f.server_hello.protocol(), Some(ProtocolVersion::Tls13));
    assert_eq!(f.server_hello.selected_group, Some(groups::X25519));
    assert!([0x1301, 0x1302, 0x1303].contains(&f.server_hello.cipher_suite));
    assert!(
        f.certificates.is_none(),
        "TLS 1.3 certificates are encrypted"
    );
}

#[tokio::test]
async fn hello_retry_request_names_p384_and_the_retry_succeeds() {
    let srv = s_server(&["-tls1_3", "-groups", "P-384"]).await;
    let opts = HelloOptions {
        groups: vec![groups::X25519, groups::SECP384R1],
        key_shares: vec![groups::X25519],
        ..HelloOptions::for_host("localhost")
    };
    let p = probe_tls13(srv.addr, &[0x1301, 0x1302], &opts, &limits())
        .await
        .expect("answer");
    let hrr = p.hello_retry.expect("a HelloRetryRequest");
    assert!(hrr.is_hrr);
    assert_eq!(hrr.selected_group, Some(groups::SECP384R1));
    let f = flight(p.answer);
    assert_eq!(f.server_hello.version, 0x0304);
    assert!(!f.server_hello.is_hrr);
    assert_eq!(f.server_hello.selected_group, Some(groups::SECP384R1));
    assert_eq!(f.server_hello.key_share_len, Some(97));
}

#[tokio::test]
async fn hrr_to_a_group_without_key_share_support_is_returned_without_retry() {
    let srv = s_server(&["-tls1_3", "-groups", "P-521"]).await;
    let p = probe_tls13(
        srv.addr,
        &[0x1301],
        &HelloOptions::for_host("localhost"),
        &limits(),
    )
    .await
    .expect("answer");
    let hrr = p.hello_retry.expect("a HelloRetryRequest");
    assert_eq!(hrr.selected_group, Some(groups::SECP521R1));
    assert_eq!(p.answer, ServerAnswer::HelloRetryRequest(hrr));
}

#[tokio::test]
async fn dhe_with_a_1024_bit_group_reports_1024_bits() {
    let material_probe = material();
    let dh = material_probe.path("dh1024.pem");
    let dh = dh.to_str().expect("utf-8 path");
    let srv = s_server(&[
        "-tls1_2",
        "-cipher",
        "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
        "-dhparam",
        dh,
    ])
    .await;
    let f = flight(
        probe(
            srv.addr,
            &hello(ProtocolVersion::Tls12, &[0x009e, 0x0033]),
            &limits(),
        )
        .await
        .expect("answer"),
    );
    assert_eq!(f.server_hello.cipher_suite, 0x009e);
    let Some(KeyExchangeParams::Dh(p)) = f.key_exchange.map(|k| k.params) else {
        panic!("no DH parameters");
    };
    assert_eq!(p.prime_bits, 1024);
    assert!(p.generator_value().is_none() || p.generator_value() > Some(1));
}

#[tokio::test]
async fn server_refusals_are_parsed_alerts() {
    // A TLS 1.2-only server and a TLS 1.0 hello: protocol_version.
    let srv = s_server(&["-tls1_2"]).await;
    let a = probe(
        srv.addr,
        &hello(ProtocolVersion::Tls10, &[0x002f]),
        &limits(),
    )
    .await
    .expect("answer");
    assert_eq!(
        a,
        ServerAnswer::Alert(Alert {
            level: 2,
            description: 70
        })
    );
    drop(srv);
    // No common suite: handshake_failure.
    let srv = s_server(&["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"]).await;
    let a = probe(
        srv.addr,
        &hello(ProtocolVersion::Tls12, &[0x002f]),
        &limits(),
    )
    .await
    .expect("answer");
    let ServerAnswer::Alert(alert) = a else {
        panic!("{a:?}")
    };
    assert_eq!(alert.description_name(), "handshake_failure");
}

#[tokio::test]
async fn sslv3_and_sslv2_hellos_to_openssl3_are_refused() {
    let srv = s_server(&[]).await;
    let v3 = hello(
        ProtocolVersion::Ssl3,
        &suites_for(ProtocolVersion::Ssl3)[..100],
    );
    match probe(srv.addr, &v3, &limits()).await {
        Ok(ServerAnswer::Alert(a)) => assert!(a.is_fatal(), "{a}"),
        Err(e) => assert!(e.is_refusal(), "{e}"),
        Ok(other) => panic!("SSLv3 accepted? {other:?}"),
    }
    let v2 = sslv2::client_hello_all().expect("builds");
    match probe(srv.addr, &v2, &limits()).await {
        Ok(ServerAnswer::Alert(a)) => assert!(a.is_fatal(), "{a}"),
        Err(e) => assert!(e.is_refusal(), "{e}"),
        Ok(other) => panic!("SSLv2 accepted? {other:?}"),
    }
}

#[tokio::test]
async fn mutations_of_a_real_openssl_answer_never_panic_nor_overclaim() {
    let srv = s_server(&["-tls1_2"]).await;
    // Capture the raw answer.
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(&hello(ProtocolVersion::Tls12, &[0xc030, 0xc02f]))
        .await
        .expect("send");
    let mut raw = Vec::new();
    let opts = ParseOptions::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(Progress::Done { consumed, .. }) = parse_answer(&raw, &opts) {
            raw.truncate(consumed);
            break;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("in time")
            .expect("read");
        assert!(n > 0, "server closed early");
        raw.extend_from_slice(&chunk[..n]);
    }
    let stride = (raw.len() / 400).max(1);
    for i in (0..raw.len()).step_by(stride) {
        for v in [0x00, 0xff, raw[i] ^ 0x01, raw[i].wrapping_add(0x40)] {
            let mut m = raw.clone();
            m[i] = v;
            for input in [&m[..], &m[..i]] {
                for o in [
                    opts,
                    ParseOptions {
                        stop_at: StopAt::Certificate,
                        after_hrr: true,
                    },
                ] {
                    if let Ok(Progress::Done { consumed, .. }) = parse_answer(input, &o) {
                        assert!(consumed <= input.len());
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------ hostile peers

fn tight() -> ProbeLimits {
    ProbeLimits {
        connect_timeout: Duration::from_secs(1),
        read_timeout: Duration::from_millis(500),
        total_timeout: Duration::from_millis(1500),
        ..ProbeLimits::default()
    }
}

/// A one-connection peer on 127.0.0.1 behaving as `behave` says.
async fn peer<F, Fut>(behave: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        if let Ok((s, _)) = l.accept().await {
            behave(s).await;
        }
    });
    addr
}

/// Reads the client's hello (whatever arrives within 300 ms).
async fn read_hello(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
        Ok(Ok(n)) => buf.truncate(n),
        _ => buf.clear(),
    }
    buf
}

async fn probe_peer(addr: SocketAddr) -> (Result<ServerAnswer, ProbeError>, Duration) {
    let start = Instant::now();
    let r = probe(addr, &hello(ProtocolVersion::Tls12, &[0xc02f]), &tight()).await;
    (r, start.elapsed())
}

#[tokio::test]
async fn probe_reports_garbage_as_not_tls() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        let _ = s.write_all(b"\x00\x07\x13garbage\xfe\xff").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let (r, took) = probe_peer(addr).await;
    assert!(matches!(r, Err(ProbeError::NotTls { .. })), "{r:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn probe_names_an_ssh_banner() {
    let addr = peer(|mut s| async move {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let (r, _) = probe_peer(addr).await;
    let Err(e) = r else { panic!("{r:?}") };
    assert!(e.to_string().contains("SSH banner"), "{e}");
    assert!(e.to_string().contains("OpenSSH_9.2p1"), "{e}");
}

#[tokio::test]
async fn probe_reports_a_truncated_record_then_close() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        let f = tls12_flight(0xc02f, &ske_ecdh(groups::X25519, &[7; 32]));
        let _ = s.write_all(&f[..20]).await;
        let _ = s.shutdown().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let (r, _) = probe_peer(addr).await;
    assert_eq!(r, Err(ProbeError::Truncated { received: 20 }));
}

#[tokio::test]
async fn probe_refuses_a_16_mib_certificate_without_reading_it() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        let mut b = record(22, 0x0303, &server_hello(0x0303, [1; 32], 0xc02f, None));
        b.extend([22, 3, 3, 0x40, 0x00, 11, 0xff, 0xff, 0xff]);
        if s.write_all(&b).await.is_err() {
            return;
        }
        // Then try to push all 16 MiB.
        let zeros = vec![0u8; 16 * 1024];
        for _ in 0..1024 {
            if s.write_all(&zeros).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (r, took) = probe_peer(addr).await;
    let Err(ProbeError::TooLarge { detail }) = &r else {
        panic!("{r:?}")
    };
    assert!(detail.contains("Certificate"), "{detail}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn probe_gives_up_on_a_slow_peer_at_the_deadline() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        if s.write_all(&[22, 3, 3, 0x40, 0x00]).await.is_err() {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(&[0]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (r, took) = probe_peer(addr).await;
    assert_eq!(r, Err(ProbeError::Deadline { after_ms: 1500 }));
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(3000),
        "{took:?}"
    );
}

#[tokio::test]
async fn probe_reports_a_reset_mid_handshake() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        let f = tls12_flight(0xc02f, &[]);
        let _ = s.write_all(&f[..10]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = s.set_zero_linger();
        drop(s); // RST
    })
    .await;
    let (r, took) = probe_peer(addr).await;
    assert!(matches!(r, Err(ProbeError::Reset { .. })), "{r:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn probe_times_out_on_a_silent_peer() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let (r, took) = probe_peer(addr).await;
    assert_eq!(r, Err(ProbeError::ReadTimeout { after_ms: 500 }));
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn probe_reports_a_close_without_answer_as_a_refusal() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        let _ = s.shutdown().await;
    })
    .await;
    let (r, _) = probe_peer(addr).await;
    let Err(e) = r else { panic!("{r:?}") };
    assert!(e.is_refusal(), "{e}");
}

#[tokio::test]
async fn probe_reports_connection_refused() {
    let port = free_port(); // bound then released: nothing listens
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (r, _) = probe_peer(addr).await;
    assert_eq!(r, Err(ProbeError::ConnectRefused));
    assert_eq!(ProbeError::ConnectRefused.to_string(), "connection refused");
}

#[tokio::test]
async fn probe_stops_reading_an_endless_valid_stream_at_max_bytes() {
    let addr = peer(|mut s| async move {
        read_hello(&mut s).await;
        // HelloRequests are valid and ignored: an endless stream of them.
        let rec = record(22, 0x0303, &[0u8; 4 * 1024]);
        for _ in 0..64 {
            if s.write_all(&rec).await.is_err() {
                return;
            }
        }
    })
    .await;
    let lim = ProbeLimits {
        max_bytes: 64 * 1024,
        ..tight()
    };
    let r = probe(addr, &hello(ProtocolVersion::Tls12, &[0xc02f]), &lim).await;
    assert!(matches!(r, Err(ProbeError::TooLarge { .. })), "{r:?}");
}

#[tokio::test]
async fn sslv2_server_hello_replayed_is_recognised() {
    let cert = material().cert_der;
    let served = cert.clone();
    let addr = peer(move |mut s| async move {
        let h = read_hello(&mut s).await;
        // An SSLv2 CLIENT-HELLO: 2-byte header with the high bit, type 1, version 2.
        assert_eq!(h.get(2..5), Some(&[1u8, 0, 2][..]));
        let rec = sslv2::server_hello_record(
            &served,
            &[sslv2::RC4_128_WITH_MD5, sslv2::DES_192_EDE3_CBC_WITH_MD5],
            &[0x5a; 16],
        );
        let _ = s.write_all(&rec).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    let a = probe(addr, &sslv2::client_hello_all().expect("builds"), &tight())
        .await
        .expect("answer");
    let ServerAnswer::Sslv2(sh) = a else {
        panic!("{a:?}")
    };
    assert_eq!(sh.certificate, cert);
    assert_eq!(
        sh.cipher_specs,
        vec![sslv2::RC4_128_WITH_MD5, sslv2::DES_192_EDE3_CBC_WITH_MD5]
    );
}
