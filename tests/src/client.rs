//! HTTPS clients for the tests: the query API with a bearer key, and the
//! agent side of `POST /api/v1/reports` with a client certificate.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;

/// A rustls client config that trusts only `ca_pem`, optionally presenting
/// a client certificate.
pub fn tls_config(ca_pem: &str, identity: Option<(&str, &str)>) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem) {
        roots.add(c).unwrap();
    }
    let b = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match identity {
        Some((cert, key)) => b
            .with_client_auth_cert(certs(cert), private_key(key))
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

pub fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

pub fn private_key(pem: &str) -> PrivateKeyDer<'static> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .unwrap()
        .expect("a private key in the PEM")
}

/// A JSON answer: status code and body (Null when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str, ca_pem: &str, identity: Option<(&str, &str)>) -> ApiClient {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(ca_pem, identity))
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    async fn answer(r: reqwest::Response) -> Answer {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut rq = self.http.get(format!("{}{}", self.base, path));
        if let Some(k) = bearer {
            rq = rq.bearer_auth(k);
        }
        Self::answer(rq.send().await.unwrap()).await
    }

    /// GET with a key that must be accepted; returns the JSON body.
    pub async fn get_ok(&self, path: &str, key: &str) -> Value {
        let a = self.get(path, Some(key)).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.text);
        a.body
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, reqwest::Error> {
        let mut rq = self.http.post(format!("{}{}", self.base, path)).body(body);
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        Ok(Self::answer(rq.send().await?).await)
    }

    pub async fn post_json(&self, path: &str, v: &Value) -> Answer {
        self.post_raw(
            path,
            serde_json::to_vec(v).unwrap(),
            &[("content-type", "application/json")],
        )
        .await
        .unwrap()
    }

    /// The value of an unlabelled Prometheus counter (0 when absent).
    pub async fn metric(&self, name: &str) -> u64 {
        let a = self.get("/metrics", None).await;
        assert_eq!(a.status, 200, "/metrics: {}", a.text);
        parse_metric(&a.text, name)
    }
}

pub fn parse_metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().parse::<f64>().unwrap_or(0.0) as u64)
        .unwrap_or(0)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
