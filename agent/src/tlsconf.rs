//! rustls client configurations for talking to the server.
//!
//! Every config is built with `rustls::crypto::ring::default_provider()`
//! given explicitly, never a process-wide default. After enrolment the
//! agent trusts exactly one root for the server: `<state>/server-ca.pem`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::fsio;
use crate::state::StateDir;

const MAX_PEM_BYTES: u64 = 1 << 20;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Every certificate in PEM text (`what` names the source in errors).
pub fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fsio::read_bounded(path, MAX_PEM_BYTES).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(&read(path)?, &path.display().to_string())
}

/// The private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| TlsError::Pem {
        what: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// A root store holding exactly these certificates.
pub fn root_store(
    certs: Vec<CertificateDer<'static>>,
    what: &str,
) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs {
        store.add(c).map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(store)
}

/// The Mozilla roots shipped in `webpki-roots`.
pub fn webpki_root_store() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// A client config trusting `roots`, presenting `client` if given.
pub fn client_config(
    roots: RootCertStore,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    Ok(match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    })
}

/// The enrolled agent's config: pinned server CA, client certificate and key.
/// Fails if the key does not match the certificate.
pub fn agent_client_config(state: &StateDir) -> Result<ClientConfig, TlsError> {
    let ca = state.ca_path();
    let roots = root_store(read_certs(&ca)?, &ca.display().to_string())?;
    let chain = read_certs(&state.cert_path())?;
    let key = read_key(&state.key_path())?;
    client_config(roots, Some((chain, key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_an_error_not_a_panic() {
        assert!(certs_from_pem(b"", "x").is_err());
        assert!(certs_from_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n", "x").is_err());
        assert!(certs_from_pem(&[0xff; 300], "x").is_err());
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["ca".into()])
            .unwrap()
            .self_signed(&ca_key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let roots = root_store(vec![ca.der().clone()], "ca").unwrap();
        let key = PrivateKeyDer::from_pem_slice(other.serialize_pem().as_bytes()).unwrap();
        assert!(client_config(roots.clone(), Some((vec![ca.der().clone()], key))).is_err());
        let key = PrivateKeyDer::from_pem_slice(ca_key.serialize_pem().as_bytes()).unwrap();
        assert!(client_config(roots, Some((vec![ca.der().clone()], key))).is_ok());
    }
}
