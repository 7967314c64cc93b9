//! The certificate chain of a TLS 1.3-only server, where it is encrypted:
//! one rustls handshake (ring provider, TLS 1.3 only) whose verifier accepts
//! anything and keeps what the server sent. Verification is done afterwards
//! by [`super::chain`], with the reasons a person needs; here nothing is
//! trusted and no application data is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::prober::Prober;
use super::wire::ProbeError;

/// A verifier that records the chain and accepts it.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Option<Vec<Vec<u8>>>>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut certs = vec![end_entity.as_ref().to_vec()];
        certs.extend(intermediates.iter().map(|c| c.as_ref().to_vec()));
        if let Ok(mut slot) = self.chain.lock() {
            *slot = Some(certs);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

fn io_err(what: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Io {
        detail: format!("{what}: {e}"),
    }
}

async fn handshake(
    addr: SocketAddr,
    host: &str,
    recorder: Arc<Recorder>,
    _bound: Duration,
) -> Result<(), ProbeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| io_err("TLS 1.3 client configuration", e))?
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name =
        ServerName::try_from(unbracketed.to_owned()).map_err(|e| io_err("server name", e))?;
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(ProbeError::ConnectRefused)
        }
        Err(e) => return Err(io_err("connect", e)),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    // The chain is recorded during the handshake; its outcome does not matter.
    match connector.connect(name, tcp).await {
        Ok(_) => Ok(()),
        Err(e) => Err(io_err("TLS 1.3 handshake", e)),
    }
}

/// The chain a TLS 1.3 server sends, through `prober`'s gate.
pub async fn fetch_chain(prober: &Prober) -> Result<Vec<Vec<u8>>, ProbeError> {
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(None),
        schemes: rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes(),
    });
    let addr = prober.addr();
    let host = prober.host().to_owned();
    let rec = Arc::clone(&recorder);
    let outcome = prober
        .guarded(|bound| handshake(addr, &host, rec, bound))
        .await;
    let chain = recorder.chain.lock().ok().and_then(|mut c| c.take());
    match (chain, outcome) {
        (Some(c), _) if !c.is_empty() => Ok(c),
        (_, Err(e)) => Err(e),
        (_, Ok(())) => Err(ProbeError::Malformed {
            detail: "the TLS 1.3 handshake carried no certificate".into(),
        }),
    }
}
