//! Certificates the tests make themselves: their own CA (handed to the
//! server with `--ca-cert/--ca-key`) and client certificates that are valid,
//! expired, or from another CA.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

pub struct TestCa {
    pub cert_pem: String,
    pub key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(1);
        p.not_after = now + Duration::days(3650);
        let cert = p.self_signed(&key).unwrap();
        let key_pem = key.serialize_pem();
        TestCa {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(p, key),
        }
    }

    /// A client certificate in the server's convention (CN = agent id,
    /// O = org code) valid from `not_before` to `not_after`.
    /// Returns (cert PEM, key PEM).
    pub fn client_cert(
        &self,
        agent_id: &str,
        org: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, agent_id);
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = not_before;
        p.not_after = not_after;
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    pub fn valid_client_cert(&self, agent_id: &str, org: &str) -> (String, String) {
        let now = OffsetDateTime::now_utc();
        self.client_cert(
            agent_id,
            org,
            now - Duration::hours(1),
            now + Duration::days(30),
        )
    }
}
