//! The roots a chain is validated against: the webpki (Mozilla) roots, the
//! system store (`/etc/ssl/certs/ca-certificates.crt` when present) and the
//! organisation's own PEM files (`--ca`, config `ca`), plus the signature
//! algorithms the classification pass accepts.
//!
//! Two sets of algorithms: rustls-webpki's ring set (what a modern client
//! accepts), and that set preceded by legacy RSA PKCS#1 verifiers (SHA-1,
//! and 1024-bit keys with SHA-256/512). The collector validates with the
//! legacy set so that a chain that is only weak (SHA-1, small RSA key) is
//! still recognised as chaining to a trusted root and raises only its own
//! code; weakness is judged separately from the parsed certificates.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    alg_id, AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    TrustAnchor,
};

/// The system's bundle of trusted roots (Debian, Ubuntu, Alpine layout).
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a trust file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The file cannot be read or is not PEM.
    #[error("{path}: {detail}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The file holds no certificate.
    #[error("{path}: no PEM certificate in it")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the file cannot be a trust anchor.
    #[error("{path}: certificate {index} cannot be a trust anchor: {detail}")]
    BadAnchor {
        /// The file.
        path: PathBuf,
        /// Which certificate (0-based).
        index: usize,
        /// Why.
        detail: String,
    },
}

/// Trusted roots.
#[derive(Debug, Clone)]
pub struct TrustStore {
    anchors: Vec<TrustAnchor<'static>>,
    /// Where the anchors came from, for evidence.
    pub sources: Vec<String>,
}

fn anchors_of(path: &Path, strict: bool) -> Result<Vec<TrustAnchor<'static>>, TrustError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| TrustError::Unreadable {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (index, item) in iter.enumerate() {
        let der = match item {
            Ok(d) => d,
            Err(e) if strict => {
                return Err(TrustError::Unreadable {
                    path: path.to_owned(),
                    detail: e.to_string(),
                })
            }
            Err(_) => continue,
        };
        match webpki::anchor_from_trusted_cert(&der) {
            Ok(a) => out.push(a.to_owned()),
            Err(e) if strict => {
                return Err(TrustError::BadAnchor {
                    path: path.to_owned(),
                    index,
                    detail: e.to_string(),
                })
            }
            Err(_) => {}
        }
    }
    if out.is_empty() && strict {
        return Err(TrustError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

impl TrustStore {
    /// The webpki roots, the system bundle (when `system` and present) and
    /// every file of `extra` (each must hold at least one certificate).
    pub fn load(extra: &[PathBuf], system: bool) -> Result<TrustStore, TrustError> {
        let mut anchors: Vec<TrustAnchor<'static>> = webpki_roots::TLS_SERVER_ROOTS.to_vec();
        let mut sources = vec![format!("webpki-roots ({})", anchors.len())];
        if system && Path::new(SYSTEM_BUNDLE).is_file() {
            // A damaged system bundle costs its damaged entries, not the scan.
            let sys = anchors_of(Path::new(SYSTEM_BUNDLE), false).unwrap_or_default();
            sources.push(format!("{SYSTEM_BUNDLE} ({})", sys.len()));
            anchors.extend(sys);
        }
        for p in extra {
            let a = anchors_of(p, true)?;
            sources.push(format!("{} ({})", p.display(), a.len()));
            anchors.extend(a);
        }
        Ok(TrustStore { anchors, sources })
    }

    /// The anchors.
    pub fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// Whether an anchor has this subject (the DER contents of the Name).
    pub fn has_subject(&self, subject_contents: &[u8]) -> bool {
        self.anchors
            .iter()
            .any(|a| a.subject.as_ref() == subject_contents)
    }
}

/// sha1WithRSAEncryption with NULL parameters (RFC 3279 §2.2.1), DER contents.
const SHA1_WITH_RSA: AlgorithmIdentifier = AlgorithmIdentifier::from_slice(&[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
]);

/// An RSA PKCS#1 verifier that also takes 1024-bit keys and SHA-1.
#[derive(Debug)]
struct LegacyRsa {
    params: &'static ring::signature::RsaParameters,
    sig_alg: AlgorithmIdentifier,
}

impl SignatureVerificationAlgorithm for LegacyRsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(self.params, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.sig_alg
    }
}

static LEGACY_RSA_SHA1: LegacyRsa = LegacyRsa {
    params: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
    sig_alg: SHA1_WITH_RSA,
};
static LEGACY_RSA_SHA256: LegacyRsa = LegacyRsa {
    params: &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    sig_alg: alg_id::RSA_PKCS1_SHA256,
};
static LEGACY_RSA_SHA512: LegacyRsa = LegacyRsa {
    params: &ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    sig_alg: alg_id::RSA_PKCS1_SHA512,
};

/// The classification pass's algorithms: the legacy RSA verifiers first
/// (webpki uses the first whose identifiers match), then webpki's ring set.
pub fn lenient_algorithms() -> Vec<&'static dyn SignatureVerificationAlgorithm> {
    let mut v: Vec<&'static dyn SignatureVerificationAlgorithm> =
        vec![&LEGACY_RSA_SHA1, &LEGACY_RSA_SHA256, &LEGACY_RSA_SHA512];
    v.extend(webpki::ALL_VERIFICATION_ALGS.iter().copied());
    v
}
