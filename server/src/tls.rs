//! The HTTPS listener: rustls configuration (TLS 1.2 and 1.3, optional
//! client certificates verified against the CA with the server's clock),
//! the accept loop, the verified peer identity handed to handlers, and
//! graceful shutdown.
//!
//! Per connection: the TLS handshake must finish within
//! [`HANDSHAKE_TIMEOUT`]; a client certificate that is presented and does
//! not verify ends the handshake with a TLS alert (rustls); a verified one
//! becomes a [`ClientCert`] request extension on every request of the
//! connection. On shutdown the listener closes at once, open connections
//! finish their in-flight requests, and whatever is left after
//! [`SHUTDOWN_GRACE`] is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use uuid::Uuid;

use crate::clock::{Clock, ClockTimeProvider};
use crate::pki::{Ca, ServerIdentity};

/// Longest a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest a client may take to send request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// TLS setup failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The client certificate of the connection a request arrived on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCert {
    /// No certificate was presented.
    None,
    /// A certificate that verified against the CA and names an agent.
    Agent(PeerIdentity),
    /// A certificate that verified but does not name an agent and an
    /// organisation the way agent certificates do.
    Unusable(String),
}

/// Who a verified agent certificate says the peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject commonName.
    pub agent_id: Uuid,
    /// Subject organizationName.
    pub org: String,
    /// Lowercase hex of the serial number.
    pub serial: String,
}

/// The rustls server configuration.
pub fn server_config(
    ca: &Ca,
    identity: ServerIdentity,
    clock: Arc<dyn Clock>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der().clone())?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut cfg = ServerConfig::builder_with_details(provider, Arc::new(ClockTimeProvider(clock)))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The identity in a (verified) client certificate.
pub fn client_cert_from_der(der: &[u8]) -> ClientCert {
    let cert = match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => c,
        Err(e) => return ClientCert::Unusable(format!("certificate does not parse: {e}")),
    };
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok());
    let org = subject
        .iter_organization()
        .next()
        .and_then(|a| a.as_str().ok());
    let Some(agent_id) = cn.and_then(|cn| Uuid::parse_str(cn).ok()) else {
        return ClientCert::Unusable("subject CN is not an agent id".into());
    };
    let Some(org) = org.filter(|o| trustwatch_common::identity::is_valid_org_code(o)) else {
        return ClientCert::Unusable("subject O is not an organisation code".into());
    };
    ClientCert::Agent(PeerIdentity {
        agent_id,
        org: org.to_owned(),
        serial: crate::pki::hex(cert.raw_serial()),
    })
}

fn client_cert_of(conn: &rustls::ServerConnection) -> ClientCert {
    match conn.peer_certificates().and_then(|c| c.first()) {
        None => ClientCert::None,
        Some(der) => client_cert_from_der(der),
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then
/// drains open connections (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    conns.spawn(connection(tcp, peer, acceptor.clone(), router.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!(
        connections = conns.len(),
        "shutting down: no longer accepting, finishing in-flight requests"
    );
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "grace period over, dropping connections"
        );
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    if *stop.borrow() {
        return;
    }
    let handshake = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => r,
        _ = stop.changed() => return,
    };
    let tls = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let cert = client_cert_of(tls.get_ref().1);
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(cert.clone());
        router.clone().oneshot(req)
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    if *stop.borrow() {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert_with(cn: &str, o: Option<&str>) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        if let Some(o) = o {
            p.distinguished_name.push(DnType::OrganizationName, o);
        }
        let k = KeyPair::generate().unwrap();
        p.self_signed(&k).unwrap().der().to_vec()
    }

    #[test]
    fn agent_identity_comes_from_cn_and_o() {
        let id = Uuid::now_v7();
        match client_cert_from_der(&cert_with(&id.to_string(), Some("RX1"))) {
            ClientCert::Agent(p) => {
                assert_eq!(p.agent_id, id);
                assert_eq!(p.org, "RX1");
                assert!(!p.serial.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn certificate_without_agent_id_or_org_is_unusable() {
        assert!(matches!(
            client_cert_from_der(&cert_with("not-a-uuid", Some("RX1"))),
            ClientCert::Unusable(_)
        ));
        assert!(matches!(
            client_cert_from_der(&cert_with(&Uuid::now_v7().to_string(), None)),
            ClientCert::Unusable(_)
        ));
        assert!(matches!(
            client_cert_from_der(b"garbage"),
            ClientCert::Unusable(_)
        ));
    }
}
