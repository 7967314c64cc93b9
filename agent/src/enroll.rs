//! `enroll`: obtain this agent's credentials from the server.
//!
//! The token is read from a file (never argv). An ECDSA P-256 key pair is
//! generated here and never leaves the machine; a PKCS#10 CSR for it is
//! posted to `/api/v1/enroll` over TLS trusting only `--server-ca` (or the
//! webpki roots when none is given). On 201 the files of the state
//! directory are written, each atomically: `agent-key.pem` (mode 0600 from
//! creation), `agent.pem`, `server-ca.pem` and last `enrollment.json`.
//!
//! The key is written only after the server accepted the CSR and the
//! answer was checked (certificate matches the key, CA parses, org code
//! valid): a failed re-enrolment therefore never breaks the credentials of
//! an agent that is already enrolled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use trustwatch_common::identity::{is_valid_org_code, ENROLL_PATH};
use trustwatch_common::report::{EnrollRequest, EnrollResponse};

use crate::clock::Clock;
use crate::config::ServerUrl;
use crate::fsio::{self, write_atomic};
use crate::ship::{detail_of, error_chain, https_client, read_bounded};
use crate::state::{Enrollment, StateDir, StateError};
use crate::tlsconf::{self, TlsError};

/// Largest token file read.
const MAX_TOKEN_BYTES: u64 = 16 * 1024;
/// Time limit of the enrolment request.
pub const ENROLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why enrolment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    #[error("token file {path}: {reason}")]
    Token { path: PathBuf, reason: String },
    #[error("--server-ca: {0}")]
    ServerCa(TlsError),
    #[error("cannot set up TLS: {0}")]
    Tls(TlsError),
    #[error("cannot make a key pair or CSR: {0}")]
    Key(#[from] rcgen::Error),
    #[error("cannot reach {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("enrolment refused ({status}): {detail}")]
    Refused { status: u16, detail: String },
    #[error("the server's answer is unusable: {0}")]
    BadAnswer(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `enroll` needs.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub server: ServerUrl,
    pub token_file: PathBuf,
    pub server_ca: Option<PathBuf>,
    pub state: StateDir,
    pub hostname: String,
}

/// Reads and trims the enrolment token.
pub fn read_token(path: &Path) -> Result<String, EnrollError> {
    let bad = |reason: String| EnrollError::Token {
        path: path.to_owned(),
        reason,
    };
    let bytes = fsio::read_bounded(path, MAX_TOKEN_BYTES).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("empty".into()));
    }
    if token.chars().any(char::is_control) {
        return Err(bad("holds control characters (one token, one line)".into()));
    }
    Ok(token.to_owned())
}

/// Enrols the agent; see the module documentation.
pub async fn enroll(opts: &EnrollOptions, clock: &dyn Clock) -> Result<Enrollment, EnrollError> {
    let token = read_token(&opts.token_file)?;
    let roots = match &opts.server_ca {
        Some(p) => {
            let certs = tlsconf::read_certs(p).map_err(EnrollError::ServerCa)?;
            tlsconf::root_store(certs, &p.display().to_string()).map_err(EnrollError::ServerCa)?
        }
        None => tlsconf::webpki_root_store(),
    };
    let tls = tlsconf::client_config(roots, None).map_err(EnrollError::Tls)?;
    let client = https_client(tls, ENROLL_TIMEOUT).map_err(|e| EnrollError::Request {
        url: opts.server.to_string(),
        reason: e.to_string(),
    })?;

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, opts.hostname.clone());
    let csr = params.serialize_request(&key)?.pem()?;

    let url = opts.server.endpoint(ENROLL_PATH);
    let request = EnrollRequest {
        token,
        csr,
        hostname: Some(opts.hostname.clone()),
    };
    let resp = client
        .post(url.clone())
        .json(&request)
        .send()
        .await
        .map_err(|e| EnrollError::Request {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
    let status = resp.status();
    let body = read_bounded(resp)
        .await
        .map_err(|reason| EnrollError::Request {
            url: url.to_string(),
            reason,
        })?;
    if status != StatusCode::CREATED {
        return Err(EnrollError::Refused {
            status: status.as_u16(),
            detail: detail_of(&body),
        });
    }
    let answer: EnrollResponse =
        serde_json::from_slice(&body).map_err(|e| EnrollError::BadAnswer(e.to_string()))?;
    check_answer(&answer, &key)?;

    let state = &opts.state;
    state.ensure()?;
    let write = |path: PathBuf, bytes: &[u8], mode: u32| {
        write_atomic(&path, bytes, mode).map_err(|source| EnrollError::Write { path, source })
    };
    write(state.key_path(), key.serialize_pem().as_bytes(), 0o600)?;
    write(state.cert_path(), answer.certificate.as_bytes(), 0o644)?;
    write(state.ca_path(), answer.ca.as_bytes(), 0o644)?;
    let enrollment = Enrollment {
        agent_id: answer.agent_id,
        org: answer.org.clone(),
        server_url: opts.server.to_string(),
        enrolled_at: clock.now(),
    };
    let json = serde_json::to_vec_pretty(&enrollment)
        .map_err(|e| EnrollError::BadAnswer(e.to_string()))?;
    write(state.enrollment_path(), &json, 0o644)?;
    Ok(enrollment)
}

/// Checks that the answer's certificate, CA and org are usable with `key`.
fn check_answer(answer: &EnrollResponse, key: &rcgen::KeyPair) -> Result<(), EnrollError> {
    if !is_valid_org_code(&answer.org) {
        return Err(EnrollError::BadAnswer(format!(
            "organisation code {:?} is not valid",
            answer.org
        )));
    }
    let bad = |e: TlsError| EnrollError::BadAnswer(e.to_string());
    let ca = tlsconf::certs_from_pem(answer.ca.as_bytes(), "ca").map_err(bad)?;
    let roots = tlsconf::root_store(ca, "ca").map_err(bad)?;
    let chain =
        tlsconf::certs_from_pem(answer.certificate.as_bytes(), "certificate").map_err(bad)?;
    let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
        .map_err(|e| EnrollError::BadAnswer(format!("own key: {e}")))?;
    tlsconf::client_config(roots, Some((chain, key_der))).map_err(|e| {
        EnrollError::BadAnswer(format!(
            "the certificate does not fit this agent's key: {e}"
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_trimmed_and_empty_or_multiline_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  tok-123\n").unwrap();
        assert_eq!(read_token(&p).unwrap(), "tok-123");
        std::fs::write(&p, " \n").unwrap();
        assert!(read_token(&p).is_err());
        std::fs::write(&p, "a\nb").unwrap();
        assert!(read_token(&p).is_err());
        assert!(read_token(&dir.path().join("missing")).is_err());
    }

    fn issue(key: &rcgen::KeyPair, org: &str) -> EnrollResponse {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(key, &issuer)
            .unwrap();
        EnrollResponse {
            agent_id: uuid::Uuid::now_v7(),
            org: org.into(),
            certificate: leaf.pem(),
            ca: ca.pem(),
        }
    }

    #[test]
    fn answer_for_another_key_or_with_a_bad_org_is_refused() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        check_answer(&issue(&key, "RX1"), &key).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(check_answer(&issue(&other, "RX1"), &key).is_err());
        assert!(check_answer(&issue(&key, "bad org"), &key).is_err());
        let mut a = issue(&key, "RX1");
        a.ca = "garbage".into();
        assert!(check_answer(&a, &key).is_err());
    }
}
