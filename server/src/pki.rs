//! The server's PKI: the CA that signs agent certificates (and is the only
//! root client certificates are verified against), the server certificate
//! presented to agents, and CSR signing at enrolment.
//!
//! Files in the data directory (PEM):
//! * `ca.pem` / `ca-key.pem` — the CA, generated on first start (ECDSA
//!   P-256, path length 0, 20 years); agents pin `ca.pem`. With
//!   `--ca-cert/--ca-key` the given CA is used instead and `ca.pem` is
//!   overwritten with its certificate, so `ca.pem` always holds the CA in use.
//! * CA and server certificates are valid from a day before the earlier of
//!   the clock and the system time until well after the later of the two,
//!   so both agents (system time) and a `TRUSTWATCH_NOW` server accept them.
//! * `server.pem` / `server-key.pem` — the server certificate, signed by the
//!   CA, with SANs `localhost`, `127.0.0.1`, `::1` and the listen host.
//!   Regenerated when a required name is missing, it is not issued by the
//!   current CA, or it is expired or within 30 days of expiry.
//!
//! Invariants: key files are written with mode 0600, every file atomically
//! (temporary file, fsync, rename). An agent certificate has subject
//! `CN=<agent id>, O=<org code>`, the clientAuth EKU, a random positive
//! 128-bit serial, validity from the clock's now (less one minute of skew)
//! to one year later, and the public key of a CSR whose signature verified.
//! Nothing else of the CSR (subject, extensions) is used.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use ring::rand::SecureRandom;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest CSR PEM accepted.
pub const MAX_CSR_PEM_BYTES: usize = 16 * 1024;
/// Lifetime of an agent certificate.
pub const AGENT_CERT_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
const SKEW: Duration = Duration::from_secs(60);
const CA_LIFETIME: Duration = Duration::from_secs(20 * 365 * 86_400);
const SERVER_LIFETIME: Duration = Duration::from_secs(825 * 86_400);
const SERVER_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// What can go wrong with keys and certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {what}")]
    BadFile { path: PathBuf, what: String },
    #[error("{0} exists but {1} does not; restore it or remove both to generate a new CA")]
    HalfCa(PathBuf, PathBuf),
    #[error("certificate signing request: {0}")]
    BadCsr(String),
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("random number generator failed")]
    Random,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The certificate authority.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A verified CSR: its public key, ready to be certified.
#[derive(Debug, Clone)]
pub struct Csr(CertificateSigningRequestParams);

impl Csr {
    /// Parses a PEM PKCS#10 request and verifies its self-signature.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        if pem.len() > MAX_CSR_PEM_BYTES {
            return Err(PkiError::BadCsr(format!(
                "longer than {MAX_CSR_PEM_BYTES} bytes"
            )));
        }
        CertificateSigningRequestParams::from_pem(pem)
            .map(Csr)
            .map_err(|e| PkiError::BadCsr(e.to_string()))
    }
}

/// A certificate issued to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub pem: String,
    /// Lowercase hex of the serial number's DER content bytes.
    pub serial: String,
}

impl Ca {
    /// Loads `ca.pem`/`ca-key.pem` from the data directory, generating them
    /// when neither exists.
    pub fn load_or_create(data_dir: &Path, now: OffsetDateTime) -> Result<Self, PkiError> {
        let cert_path = data_dir.join("ca.pem");
        let key_path = data_dir.join("ca-key.pem");
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Self::load(&cert_path, &key_path),
            (false, false) => {
                let ca = Self::generate(now)?;
                write_atomic(&key_path, ca.issuer.key().serialize_pem().as_bytes(), 0o600)?;
                write_atomic(&cert_path, ca.cert_pem.as_bytes(), 0o644)?;
                tracing::info!(path = %cert_path.display(), "generated a new CA");
                Ok(ca)
            }
            (true, false) => Err(PkiError::HalfCa(cert_path, key_path)),
            (false, true) => Err(PkiError::HalfCa(key_path, cert_path)),
        }
    }

    /// A fresh CA (not written anywhere).
    pub fn generate(now: OffsetDateTime) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "trustwatch CA");
        dn.push(DnType::OrganizationName, "trustwatch");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (not_before, latest) = window(now);
        params.not_before = not_before;
        params.not_after = latest + CA_LIFETIME;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let cert_der = cert.der().clone();
        Ok(Ca {
            cert_pem,
            cert_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from PEM files (the generated one, or `--ca-cert/--ca-key`).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, PkiError> {
        let cert_pem = std::fs::read_to_string(cert_path).map_err(io_err(cert_path))?;
        let key_pem = std::fs::read_to_string(key_path).map_err(io_err(key_path))?;
        let bad = |path: &Path, what: String| PkiError::BadFile {
            path: path.to_owned(),
            what,
        };
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| bad(key_path, format!("not a usable private key: {e}")))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad(cert_path, format!("no PEM certificate: {e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| bad(cert_path, format!("not a certificate: {e}")))?;
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(bad(key_path, "does not match the CA certificate".into()));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| bad(cert_path, format!("not usable as a CA: {e}")))?;
        Ok(Ca {
            cert_pem: rcgen_pem(&cert_der),
            cert_der,
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Certifies the CSR's key for an agent: `CN=agent_id, O=org`.
    pub fn sign_agent(
        &self,
        csr: &Csr,
        agent_id: Uuid,
        org: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id.to_string());
        dn.push(DnType::OrganizationName, org);
        params.distinguished_name = dn;
        params.not_before = now - SKEW;
        params.not_after = now + AGENT_CERT_LIFETIME;
        params.serial_number = Some(random_serial()?);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&csr.0.public_key, &self.issuer)?;
        let serial = serial_hex(cert.der()).unwrap_or_default();
        Ok(IssuedCert {
            pem: cert.pem(),
            serial,
        })
    }

    /// A server certificate with the given names, signed by this CA.
    pub fn issue_server_cert(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "trustwatch server");
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        let (not_before, latest) = window(now);
        params.not_before = not_before;
        params.not_after = latest + SERVER_LIFETIME;
        params.serial_number = Some(random_serial()?);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The certificate chain and key the TLS listener presents.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// Loads a PEM chain and key (the generated pair, or `--tls-cert/--tls-key`).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, PkiError> {
        let chain = CertificateDer::pem_file_iter(cert_path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| PkiError::BadFile {
                path: cert_path.to_owned(),
                what: format!("cannot read PEM certificates: {e}"),
            })?;
        if chain.is_empty() {
            return Err(PkiError::BadFile {
                path: cert_path.to_owned(),
                what: "no certificate in it".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| PkiError::BadFile {
            path: key_path.to_owned(),
            what: format!("cannot read a PEM private key: {e}"),
        })?;
        Ok(ServerIdentity { chain, key })
    }

    /// Reuses `server.pem`/`server-key.pem` in the data directory when they
    /// are still right for `names` and `ca`, else issues and writes new ones.
    pub fn ensure(
        data_dir: &Path,
        ca: &Ca,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let cert_path = data_dir.join("server.pem");
        let key_path = data_dir.join("server-key.pem");
        if cert_path.exists() && key_path.exists() {
            let existing = std::fs::read(&cert_path).map_err(io_err(&cert_path))?;
            match server_cert_problem(&existing, ca, names, now) {
                None => return Self::load(&cert_path, &key_path),
                Some(why) => tracing::info!(reason = %why, "regenerating the server certificate"),
            }
        }
        let (cert_pem, key_pem) = ca.issue_server_cert(names, now)?;
        write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
        write_atomic(&cert_path, cert_pem.as_bytes(), 0o644)?;
        Self::load(&cert_path, &key_path)
    }
}

/// Why an existing server certificate cannot be reused, if it cannot.
fn server_cert_problem(
    pem: &[u8],
    ca: &Ca,
    names: &[String],
    now: OffsetDateTime,
) -> Option<String> {
    let der = match CertificateDer::from_pem_slice(pem) {
        Ok(d) => d,
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    let cert = match x509_parser::parse_x509_certificate(&der) {
        Ok((_, c)) => c,
        Err(e) => return Some(format!("unparsable: {e}")),
    };
    let ca_cert = match x509_parser::parse_x509_certificate(ca.cert_der()) {
        Ok((_, c)) => c,
        Err(e) => return Some(format!("CA unparsable: {e}")),
    };
    if cert.issuer() != ca_cert.subject()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Some("not issued by the current CA".into());
    }
    let (earliest, latest) = window(now);
    let validity = cert.validity();
    if validity.not_before.timestamp() > earliest.unix_timestamp() + 86_400
        || validity.not_after.timestamp() < (latest + SERVER_RENEW_BEFORE).unix_timestamp()
    {
        return Some("expired or about to expire".into());
    }
    let sans: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                x509_parser::extensions::GeneralName::IPAddress(b) => ip_from_bytes(b),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for n in names {
        let want = match n.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => n.to_ascii_lowercase(),
        };
        if !sans.contains(&want) {
            return Some(format!("does not name {n}"));
        }
    }
    None
}

fn ip_from_bytes(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b)
            .ok()
            .map(|a| IpAddr::from(a).to_string()),
        16 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| IpAddr::from(a).to_string()),
        _ => None,
    }
}

/// The names the server certificate carries for a listen address.
pub fn server_names(listen: &str) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Some(host) = listen_host(listen) {
        let unspecified = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        let normal = match host.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => host.to_ascii_lowercase(),
        };
        if !unspecified && !host.is_empty() && !names.contains(&normal) {
            names.push(normal);
        }
    }
    names
}

/// The host part of `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`.
pub fn listen_host(listen: &str) -> Option<String> {
    if let Ok(sa) = listen.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_string());
    }
    let (host, _port) = listen.rsplit_once(':')?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
}

/// The earlier and later of the clock's now and the system time, so that
/// long-lived certificates are valid under both when `TRUSTWATCH_NOW` is set.
fn window(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let sys = OffsetDateTime::now_utc();
    let (lo, hi) = if now < sys { (now, sys) } else { (sys, now) };
    (lo - Duration::from_secs(86_400), hi)
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PkiError::Random)?;
    // Positive, and no leading zero byte to be stripped.
    b[0] = (b[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&b))
}

/// Lowercase hex of a certificate's serial number content bytes.
pub fn serial_hex(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(hex(cert.raw_serial()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn rcgen_pem(der: &CertificateDer<'_>) -> String {
    // Re-encode so the served CA PEM is exactly one certificate.
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    let b64 = base64_encode(der);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(T[idx]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a file atomically with the given mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn agent_certificate_carries_id_org_and_the_csr_key_only() {
        let ca = Ca::generate(now()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut req = CertificateParams::default();
        req.distinguished_name.push(DnType::CommonName, "evil");
        let csr_pem = req.serialize_request(&key).unwrap().pem().unwrap();
        let csr = Csr::from_pem(&csr_pem).unwrap();
        let id = Uuid::now_v7();
        let issued = ca.sign_agent(&csr, id, "RX1", now()).unwrap();
        let der = CertificateDer::from_pem_slice(issued.pem.as_bytes()).unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn = c
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        let o = c
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, id.to_string());
        assert_eq!(o, "RX1");
        assert_eq!(c.public_key().raw, key.subject_public_key_info().as_slice());
        assert_eq!(issued.serial, hex(c.raw_serial()));
        assert_eq!(c.raw_serial().len(), 16);
        let ca_c = x509_parser::parse_x509_certificate(ca.cert_der())
            .unwrap()
            .1;
        assert!(c.verify_signature(Some(ca_c.public_key())).is_ok());
        let life = c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
        assert_eq!(life, 365 * 86_400 + 60);
    }

    #[test]
    fn csr_with_a_broken_signature_is_refused() {
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default()
            .serialize_request(&key)
            .unwrap();
        let mut der = csr.der().to_vec();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let pem = rcgen_pem(&CertificateDer::from(der));
        let pem = pem.replace("CERTIFICATE", "CERTIFICATE REQUEST");
        assert!(matches!(Csr::from_pem(&pem), Err(PkiError::BadCsr(_))));
        assert!(matches!(Csr::from_pem("hello"), Err(PkiError::BadCsr(_))));
    }

    #[test]
    fn ca_and_server_cert_are_reused_and_server_cert_regenerated_for_a_new_host() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::load_or_create(dir.path(), now()).unwrap();
        let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Ca::load_or_create(dir.path(), now()).unwrap();
        assert_eq!(ca.cert_pem(), again.cert_pem());

        let names = server_names("127.0.0.1:0");
        let s1 = ServerIdentity::ensure(dir.path(), &ca, &names, now()).unwrap();
        let s2 = ServerIdentity::ensure(dir.path(), &ca, &names, now()).unwrap();
        assert_eq!(s1.chain, s2.chain);
        let names2 = server_names("tw.example.test:8443");
        assert!(names2.contains(&"tw.example.test".to_string()));
        let s3 = ServerIdentity::ensure(dir.path(), &ca, &names2, now()).unwrap();
        assert_ne!(s1.chain, s3.chain);
        // A new CA makes the old server certificate unusable.
        let other = Ca::generate(now()).unwrap();
        let s4 = ServerIdentity::ensure(dir.path(), &other, &names2, now()).unwrap();
        assert_ne!(s3.chain, s4.chain);
    }

    #[test]
    fn listen_hosts_are_extracted() {
        assert_eq!(listen_host("127.0.0.1:8443").as_deref(), Some("127.0.0.1"));
        assert_eq!(listen_host("[::1]:0").as_deref(), Some("::1"));
        assert_eq!(listen_host("localhost:1").as_deref(), Some("localhost"));
        assert_eq!(server_names("0.0.0.0:8443").len(), 3);
        assert_eq!(server_names("[::1]:8443").len(), 3);
    }
}
