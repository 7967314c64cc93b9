//! HTTP identification: one `HEAD /` request (RFC 9110/9112), the status
//! line and the `Server` header of the answer.
//!
//! Sends: `HEAD / HTTP/1.1` with `Host`, `User-Agent`, `Accept` and
//! `Connection: close`, nothing else (no body, no cookie, no credentials).
//! Reads the response head up to the blank line (CR LF or bare LF line
//! ends), at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] header lines.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{clean_text, Conn, ParseError, ProbeError, ProbeLimits};

/// Largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 100;

/// What the response head says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpInfo {
    /// "HTTP/1.1", "HTTP/1.0".
    pub version: String,
    pub status: u16,
    /// The `Server` header, cleaned.
    pub server: Option<String>,
    /// The `X-Powered-By` header, cleaned.
    pub powered_by: Option<String>,
}

/// The request sent to `addr`.
pub fn encode_head_request(addr: SocketAddr) -> Vec<u8> {
    let host = match (addr.ip(), addr.port()) {
        (IpAddr::V4(ip), 80) => ip.to_string(),
        (IpAddr::V6(ip), 80) => format!("[{ip}]"),
        (IpAddr::V4(ip), port) => format!("{ip}:{port}"),
        (IpAddr::V6(ip), port) => format!("[{ip}]:{port}"),
    };
    format!(
        "HEAD / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: trustwatch-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// Parses a response head. Returns the info and the bytes of the head;
/// [`ParseError::Truncated`] until the blank line has arrived.
pub fn parse_http_head(b: &[u8]) -> Result<(HttpInfo, usize), ParseError> {
    let mut lines = Vec::new();
    let mut at = 0usize;
    loop {
        let rest = b.get(at..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&c| c == b'\n') else {
            if b.len() >= MAX_HEAD {
                return Err(ParseError::TooLarge { what: "http head" });
            }
            // A status line can be refused before its end.
            if lines.is_empty()
                && !b"HTTP/".starts_with(rest.get(..5.min(rest.len())).unwrap_or_default())
            {
                return Err(ParseError::invalid("http status line"));
            }
            return Err(ParseError::truncated("http head"));
        };
        let line = rest.get(..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at += nl + 1;
        if at > MAX_HEAD {
            return Err(ParseError::TooLarge { what: "http head" });
        }
        if line.is_empty() {
            if lines.is_empty() {
                return Err(ParseError::invalid("http status line"));
            }
            break;
        }
        if lines.len() > MAX_HEADERS {
            return Err(ParseError::TooLarge {
                what: "http headers",
            });
        }
        lines.push(line);
    }
    let status_line = lines.first().copied().unwrap_or_default();
    let mut parts = status_line.splitn(3, |&c| c == b' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with(b"HTTP/") || version.len() > 16 {
        return Err(ParseError::invalid("http version"));
    }
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::invalid("http status code"));
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    let mut server = None;
    let mut powered_by = None;
    for line in lines.iter().skip(1) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        if name.eq_ignore_ascii_case(b"server") && server.is_none() {
            server = Some(clean_text(value));
        } else if name.eq_ignore_ascii_case(b"x-powered-by") && powered_by.is_none() {
            powered_by = Some(clean_text(value));
        }
    }
    Ok((
        HttpInfo {
            version: clean_text(version),
            status,
            server,
            powered_by,
        },
        at,
    ))
}

/// Sends `HEAD /` to `addr` and reads the response head.
pub async fn probe_http(addr: SocketAddr, limits: &ProbeLimits) -> Result<HttpInfo, ProbeError> {
    let deadline = limits.deadline_from_now();
    let mut conn = Conn::connect(addr, limits, deadline).await?;
    let result = async {
        conn.send(&encode_head_request(addr)).await?;
        conn.read_parsed(parse_http_head).await
    }
    .await;
    conn.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{quick_limits, serve, Script};
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_has_host_with_port_and_brackets() {
        let r = encode_head_request("127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(
            r,
            b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: trustwatch-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        let r6 = encode_head_request("[::1]:80".parse().expect("addr"));
        assert!(r6.windows(11).any(|w| w == b"Host: [::1]"));
        assert!(!r6.windows(5).any(|w| w == b"]:80\r"));
    }

    #[test]
    fn parses_iis6_head_case_insensitively() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1433\r\nSERVER: Microsoft-IIS/6.0\r\nx-powered-by: ASP.NET\r\n\r\n<html>";
        let (info, used) = parse_http_head(head).expect("valid");
        assert_eq!(info.status, 200);
        assert_eq!(info.version, "HTTP/1.1");
        assert_eq!(info.server.as_deref(), Some("Microsoft-IIS/6.0"));
        assert_eq!(info.powered_by.as_deref(), Some("ASP.NET"));
        assert_eq!(used, head.len() - 6);
    }

    #[test]
    fn bare_lf_and_missing_server_are_accepted() {
        let (info, _) = parse_http_head(b"HTTP/1.0 404 Not Found\nX: y\n\n").expect("valid");
        assert_eq!(info.status, 404);
        assert_eq!(info.server, None);
    }

    #[test]
    fn incomplete_head_is_truncated_and_non_http_is_invalid() {
        assert!(matches!(
            parse_http_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Err(ParseError::Truncated { .. })
        ));
        assert!(matches!(
            parse_http_head(b"SSH-2.0-x"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_http_head(b"HTTP/1.1 2x0 OK\r\n\r\n"),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            parse_http_head(b"\r\n"),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn endless_headers_are_refused() {
        let mut b = b"HTTP/1.1 200 OK\r\n".to_vec();
        b.extend(b"A: b\r\n".repeat(MAX_HEADERS + 2));
        assert!(matches!(
            parse_http_head(&b),
            Err(ParseError::TooLarge { .. })
        ));
        let mut c = b"HTTP/1.1 200 OK\r\nServer: ".to_vec();
        c.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert!(matches!(
            parse_http_head(&c),
            Err(ParseError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn parser_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_http_head(&bytes);
        }

        #[test]
        fn garbage_after_the_head_is_left_alone(tail in proptest::collection::vec(any::<u8>(), 0..100)) {
            let mut b = b"HTTP/1.1 301 Moved\r\nServer: nginx\r\n\r\n".to_vec();
            let head_len = b.len();
            b.extend_from_slice(&tail);
            let (info, used) = parse_http_head(&b).expect("valid");
            prop_assert_eq!(used, head_len);
            prop_assert_eq!(info.server.as_deref(), Some("nginx"));
        }
    }

    #[tokio::test]
    async fn probe_reads_a_served_head() {
        let addr = serve(vec![Script::Steps(vec![(
            true,
            b"HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/6.0\r\n\r\n".to_vec(),
        )])])
        .await;
        let info = probe_http(addr, &quick_limits()).await.expect("head");
        assert_eq!(info.server.as_deref(), Some("Microsoft-IIS/6.0"));
    }

    #[tokio::test]
    async fn probe_works_over_ipv6_loopback_with_a_bracketed_host() {
        use super::super::testutil::live;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // In a namespace of its own, whose loopback has ::1.
        if !live::isolated(&live::test_path(
            module_path!(),
            "probe_works_over_ipv6_loopback_with_a_bracketed_host",
        )) {
            return;
        }
        let listener = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("IPv6 loopback (is IPv6 disabled on this machine?)");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut req = vec![0u8; 1024];
            let n = s.read(&mut req).await.expect("request");
            s.write_all(b"HTTP/1.0 200 OK\r\nServer: v6\r\n\r\n")
                .await
                .expect("answer");
            String::from_utf8_lossy(&req[..n]).to_string()
        });
        let info = probe_http(addr, &quick_limits()).await.expect("head");
        assert_eq!(info.server.as_deref(), Some("v6"));
        let req = server.await.expect("join");
        assert!(
            req.contains(&format!("Host: [::1]:{}\r\n", addr.port())),
            "{req}"
        );
    }

    /// Live: Python's http.server on loopback (a real server).
    #[tokio::test]
    async fn live_python_http_server_announces_itself() {
        use super::super::testutil::live;
        if !live::isolated(&live::test_path(
            module_path!(),
            "live_python_http_server_announces_itself",
        )) {
            return;
        }
        live::require("python3", "python3");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let dir = std::env::temp_dir();
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let _child = child.expect("start python3 -m http.server");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut info = None;
        for _ in 0..50 {
            if let Ok(i) = probe_http(addr, &quick_limits()).await {
                info = Some(i);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let info = info.expect("python http.server answered");
        assert_eq!(info.status, 200);
        let server = info.server.expect("Server header");
        assert!(server.starts_with("SimpleHTTP/"), "{server}");
    }
}
