//! HL7 v2 over MLLP: connect and close, nothing else.
//!
//! An MLLP listener hands whatever arrives to an interface engine that may
//! file it into patient records, so this probe never sends a byte — not a
//! message, not a framing character. It reports that the port accepted a
//! connection; it does not read either (an MLLP server speaks only when
//! spoken to).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{Conn, ProbeError, ProbeLimits};

/// What the MLLP probe learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MllpInfo {
    /// Always true when the probe succeeds: the port accepted a connection.
    pub port_open: bool,
}

/// Connects to `addr` and closes at once.
pub async fn probe_mllp(addr: SocketAddr, limits: &ProbeLimits) -> Result<MllpInfo, ProbeError> {
    let conn = Conn::connect(addr, limits, limits.deadline_from_now()).await?;
    conn.close().await;
    Ok(MllpInfo { port_open: true })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::quick_limits;
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn probe_sends_nothing_and_reports_open() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got).await;
            got
        });
        let info = probe_mllp(addr, &quick_limits()).await.expect("open");
        assert!(info.port_open);
        assert!(server.await.expect("join").is_empty(), "bytes were sent");
    }

    #[tokio::test]
    async fn closed_port_is_an_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        assert!(probe_mllp(addr, &quick_limits()).await.is_err());
    }
}
