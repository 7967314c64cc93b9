//! Uploading spooled reports to the server.
//!
//! `POST <server_url>/api/v1/reports` over mutual TLS (rustls with the ring
//! provider; the only trusted root is the pinned `server-ca.pem`; the client
//! certificate is `agent.pem` with `agent-key.pem`). The body is the spooled
//! file's exact bytes, gzip-compressed, with `Content-Encoding: gzip` and
//! `Content-Type: application/json`. Each request is bounded by a connect
//! timeout and a whole-request timeout; answers are read with a size bound.
//!
//! How answers are handled (see [`ShipOutcome`]):
//! * 202 with `{report_id, status: stored|duplicate}` for this report: the
//!   spool file is deleted;
//! * 401 / 403: shipping stops, the enrolment is the problem;
//! * 408, 429, 5xx, network errors and timeouts: retry later (backoff);
//! * any other 4xx: the server will never take this report: quarantine it.

use std::error::Error as StdError;
use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::{header, StatusCode, Url};
use trustwatch_common::identity::REPORTS_PATH;
use trustwatch_common::report::{ErrorBody, ReportAck};
use uuid::Uuid;

use crate::clock::Clock;
use crate::config::ServerUrl;
use crate::spool::{Spool, SpoolError};
use crate::state::RunLog;

/// Largest answer body read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// How many report ids one directory scan of a drain takes.
const DRAIN_BATCH: usize = 64;
/// Longest connection set-up.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a shipper could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
}

/// The server's verdict on one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipOutcome {
    /// 202: `stored` or `duplicate`.
    Accepted { status: String },
    /// Try again later.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// A 4xx the server will keep giving: quarantine the report.
    Rejected { status: u16, detail: String },
    /// 401/403: the agent's credentials are refused.
    Unauthorized { status: u16, detail: String },
}

/// An HTTPS client for the server's agent API.
pub struct Shipper {
    client: reqwest::Client,
    reports_url: Url,
    healthz_url: Url,
}

/// An HTTPS client for the server, built on a rustls config (which must
/// have been built with the ring provider), never using a proxy.
pub fn https_client(
    tls: rustls::ClientConfig,
    timeout: Duration,
) -> Result<reqwest::Client, ShipError> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .no_proxy()
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(timeout)
        .user_agent(concat!("trustwatch-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ShipError::Client(error_chain(&e)))
}

impl Shipper {
    /// A shipper using `tls` (pinned CA and client certificate).
    pub fn new(
        tls: rustls::ClientConfig,
        server: &ServerUrl,
        timeout: Duration,
    ) -> Result<Shipper, ShipError> {
        Ok(Shipper {
            client: https_client(tls, timeout)?,
            reports_url: server.endpoint(REPORTS_PATH),
            healthz_url: server.endpoint("/healthz"),
        })
    }

    /// Uploads one report body (the spooled JSON).
    pub async fn send(&self, id: Uuid, json: &[u8]) -> ShipOutcome {
        let body = match gzip(json) {
            Ok(b) => b,
            Err(e) => {
                return ShipOutcome::Retry {
                    reason: format!("cannot compress report: {e}"),
                    after: None,
                }
            }
        };
        let resp = self
            .client
            .post(self.reports_url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return ShipOutcome::Retry {
                    reason: format!("cannot reach {}: {}", self.reports_url, error_chain(&e)),
                    after: None,
                }
            }
        };
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let body = match read_bounded(resp).await {
            Ok(b) => b,
            Err(e) => {
                return ShipOutcome::Retry {
                    reason: format!("answer ({status}) could not be read: {e}"),
                    after: retry_after,
                }
            }
        };
        classify(id, status, &body, retry_after)
    }

    /// Whether `GET /healthz` answers 2xx within `timeout`.
    pub async fn healthz(&self, timeout: Duration) -> Result<(), String> {
        let r = self
            .client
            .get(self.healthz_url.clone())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("healthz answered {}", r.status()))
        }
    }
}

/// Decides what an answer means for report `id`.
pub fn classify(
    id: Uuid,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ShipOutcome {
    let code = status.as_u16();
    if status == StatusCode::ACCEPTED {
        return match serde_json::from_slice::<ReportAck>(body) {
            Ok(ack)
                if ack.report_id == id
                    && (ack.status == "stored" || ack.status == "duplicate") =>
            {
                ShipOutcome::Accepted { status: ack.status }
            }
            Ok(ack) => ShipOutcome::Retry {
                reason: format!(
                    "server acknowledged {} with status {:?}, expected report {id} stored or duplicate",
                    ack.report_id, ack.status
                ),
                after: retry_after,
            },
            Err(e) => ShipOutcome::Retry {
                reason: format!("server answered 202 with an unreadable body: {e}"),
                after: retry_after,
            },
        };
    }
    let detail = detail_of(body);
    match code {
        401 | 403 => ShipOutcome::Unauthorized {
            status: code,
            detail,
        },
        408 | 429 => ShipOutcome::Retry {
            reason: format!("server answered {code}: {detail}"),
            after: retry_after,
        },
        400..=499 => ShipOutcome::Rejected {
            status: code,
            detail,
        },
        _ => ShipOutcome::Retry {
            reason: format!("server answered {code}: {detail}"),
            after: retry_after,
        },
    }
}

/// The `detail` of an error body, or the start of the body as text.
pub fn detail_of(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => format!("{}: {}", e.error, e.detail),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let t: String = text.trim().chars().take(200).collect();
            if t.is_empty() {
                "(no detail)".to_owned()
            } else {
                t
            }
        }
    }
}

fn retry_after(h: &header::HeaderMap) -> Option<Duration> {
    h.get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads an answer body, refusing more than [`MAX_ANSWER_BYTES`].
pub async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// gzip-compresses a body.
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        Compression::default(),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// An error and its causes, `a: b: c`.
pub fn error_chain(e: &dyn StdError) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// How a drain of the spool ended.
#[derive(Debug)]
pub enum DrainEnd {
    /// Nothing left to ship.
    Empty,
    /// The server or network failed; try again later.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The server refused the agent's credentials.
    Unauthorized { status: u16, detail: String },
    /// The spool itself failed.
    Spool(SpoolError),
}

/// The result of a drain.
#[derive(Debug)]
pub struct Drain {
    /// Reports acknowledged by the server.
    pub shipped: usize,
    /// Reports quarantined because the server refused them for good.
    pub quarantined: usize,
    pub end: DrainEnd,
}

/// Ships the spool oldest-first until it is empty or a failure stops it.
/// The spool's lock is never held across a network wait.
pub async fn drain(spool: &Spool, shipper: &Shipper, log: &RunLog, clock: &dyn Clock) -> Drain {
    let mut shipped = 0;
    let mut quarantined = 0;
    let end = 'drain: loop {
        let ids = match spool.oldest_ids(DRAIN_BATCH) {
            Ok(ids) if ids.is_empty() => break DrainEnd::Empty,
            Ok(ids) => ids,
            Err(e) => break DrainEnd::Spool(e),
        };
        for id in ids {
            let next = match spool.load(id) {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(e) => break 'drain DrainEnd::Spool(e),
            };
            match shipper.send(next.id, &next.body).await {
                ShipOutcome::Accepted { status } => {
                    if let Err(e) = spool.remove(next.id) {
                        break 'drain DrainEnd::Spool(e);
                    }
                    tracing::info!("shipped report {}: {status}", next.id);
                    shipped += 1;
                    if let Err(e) = log.record_shipped(clock.now()) {
                        tracing::warn!("cannot record the shipment: {e}");
                    }
                }
                ShipOutcome::Rejected { status, detail } => {
                    let why = format!("server refused it with {status}: {detail}");
                    if let Err(e) = spool.quarantine(next.id, &why) {
                        break 'drain DrainEnd::Spool(e);
                    }
                    quarantined += 1;
                }
                ShipOutcome::Retry { reason, after } => {
                    break 'drain DrainEnd::Retry { reason, after }
                }
                ShipOutcome::Unauthorized { status, detail } => {
                    break 'drain DrainEnd::Unauthorized { status, detail }
                }
            }
        }
    };
    Drain {
        shipped,
        quarantined,
        end,
    }
}

impl DrainEnd {
    /// A sentence for the operator, `None` when the spool was emptied.
    pub fn problem(&self) -> Option<String> {
        match self {
            DrainEnd::Empty => None,
            DrainEnd::Retry { reason, .. } => Some(reason.clone()),
            DrainEnd::Unauthorized { status, detail } => Some(format!(
                "the server refused this agent's credentials ({status}: {detail}); \
                 the agent may have been revoked: enrol it again"
            )),
            DrainEnd::Spool(e) => Some(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn ack(id: Uuid, status: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"report_id": id, "status": status})).unwrap()
    }

    #[test]
    fn answers_map_to_the_documented_actions() {
        let id = Uuid::now_v7();
        let s = |c: u16| StatusCode::from_u16(c).unwrap();
        assert_eq!(
            classify(id, s(202), &ack(id, "stored"), None),
            ShipOutcome::Accepted {
                status: "stored".into()
            }
        );
        assert_eq!(
            classify(id, s(202), &ack(id, "duplicate"), None),
            ShipOutcome::Accepted {
                status: "duplicate".into()
            }
        );
        // A 202 for another report, or an unreadable one, deletes nothing.
        assert!(matches!(
            classify(id, s(202), &ack(Uuid::now_v7(), "stored"), None),
            ShipOutcome::Retry { .. }
        ));
        assert!(matches!(
            classify(id, s(202), b"ok", None),
            ShipOutcome::Retry { .. }
        ));
        assert!(matches!(
            classify(id, s(200), &ack(id, "stored"), None),
            ShipOutcome::Retry { .. }
        ));
        let err = br#"{"error":"unauthorized","detail":"unknown agent"}"#;
        assert_eq!(
            classify(id, s(401), err, None),
            ShipOutcome::Unauthorized {
                status: 401,
                detail: "unauthorized: unknown agent".into()
            }
        );
        assert!(matches!(
            classify(id, s(403), err, None),
            ShipOutcome::Unauthorized { .. }
        ));
        for c in [408, 429, 500, 502, 503] {
            assert!(
                matches!(classify(id, s(c), b"", None), ShipOutcome::Retry { .. }),
                "{c}"
            );
        }
        for c in [400, 404, 413, 415, 422] {
            assert!(
                matches!(classify(id, s(c), b"", None), ShipOutcome::Rejected { .. }),
                "{c}"
            );
        }
        assert_eq!(
            classify(id, s(429), b"", Some(Duration::from_secs(7))),
            ShipOutcome::Retry {
                reason: "server answered 429: (no detail)".into(),
                after: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn gzip_round_trips() {
        let data = br#"{"schema":"trustwatch.report/v1"}"#.repeat(50);
        let z = gzip(&data).unwrap();
        assert!(z.len() < data.len());
        let mut back = Vec::new();
        GzDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn detail_of_garbage_is_bounded_text() {
        assert_eq!(detail_of(b""), "(no detail)");
        assert_eq!(detail_of(&[b'x'; 1000]).len(), 200);
        assert_eq!(detail_of(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }
}
