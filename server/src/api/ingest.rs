//! `POST /api/v1/reports`: who sent it (the verified client certificate and
//! the agent's row, never the body), the body (size limits, encoding), and
//! the store's answer (stored or duplicate, after the commit). Host
//! inventories are matched against the feeds in the same transaction.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use trustwatch_common::report::ReportAck;

use super::decode::{decode_report, DecodeError};
use super::{read_body, ApiError, AppState};
use crate::clock::to_ms;
use crate::store::{IngestOutcome, MatchContext, Received, ReportRows};
use crate::tls::{ClientCert, PeerIdentity};

pub async fn post_report(State(st): State<AppState>, req: Request) -> Response {
    match ingest(&st, req).await {
        Ok((ack, outcome)) => {
            match outcome {
                IngestOutcome::Stored => st.metrics.report_stored(),
                IngestOutcome::Duplicate => st.metrics.report_duplicate(),
            }
            (StatusCode::ACCEPTED, Json(ack)).into_response()
        }
        Err(e) => {
            st.metrics.report_rejected(e.code());
            e.into_response()
        }
    }
}

async fn ingest(st: &AppState, req: Request) -> Result<(ReportAck, IngestOutcome), ApiError> {
    let (parts, body) = req.into_parts();
    let peer = authorize(st, parts.extensions.get::<ClientCert>()).await?;
    let gzip = content_encoding_is_gzip(&parts.headers)?;
    let bytes = read_body(body, st.limits.max_body_bytes).await?;
    let max = st.limits.max_decompressed_bytes;
    let decoded = tokio::task::spawn_blocking(move || decode_report(&bytes, gzip, max))
        .await
        .map_err(|e| ApiError::Internal(format!("decoder task failed: {e}")))?
        .map_err(|e| match e {
            DecodeError::TooLarge(_) => ApiError::TooLarge(e.to_string()),
            DecodeError::BadEncoding(d) => ApiError::bad_request("bad_encoding", d),
            DecodeError::InvalidReport(d) => ApiError::bad_request("invalid_report", d),
        })?;
    let rows = ReportRows::from_report(&decoded.report);
    let rec = Received {
        agent_id: peer.agent_id,
        org: &peer.org,
        received_at: to_ms(st.clock.now()),
        size: i64::try_from(decoded.json_len).unwrap_or(i64::MAX),
        blob: &decoded.blob,
    };
    let ctx = MatchContext {
        now: st.clock.now(),
        policy: st.policy,
    };
    let outcome = st.store.ingest_matching(&rows, rec, Some(&ctx)).await?;
    tracing::debug!(
        report_id = %decoded.report.report_id,
        agent_id = %peer.agent_id,
        org = %peer.org,
        status = outcome.as_str(),
        "report received"
    );
    Ok((
        ReportAck {
            report_id: decoded.report.report_id,
            status: outcome.as_str().to_owned(),
        },
        outcome,
    ))
}

/// The agent behind the connection, if it may send reports.
async fn authorize(st: &AppState, cert: Option<&ClientCert>) -> Result<PeerIdentity, ApiError> {
    let peer = match cert {
        None | Some(ClientCert::None) => {
            return Err(ApiError::unauthorized(
                "client_certificate_required",
                "reports need the agent's client certificate (mutual TLS)",
            ))
        }
        Some(ClientCert::Unusable(why)) => {
            return Err(ApiError::forbidden("unknown_agent", why.clone()))
        }
        Some(ClientCert::Agent(p)) => p,
    };
    let Some(agent) = st.store.agent(&peer.agent_id.to_string()).await? else {
        return Err(ApiError::forbidden(
            "unknown_agent",
            format!("agent {} is not enrolled", peer.agent_id),
        ));
    };
    if agent.revoked_at.is_some() {
        return Err(ApiError::forbidden(
            "agent_revoked",
            format!("agent {} has been revoked", peer.agent_id),
        ));
    }
    if agent.org != peer.org {
        return Err(ApiError::forbidden(
            "org_mismatch",
            "the certificate's organisation is not the agent's",
        ));
    }
    Ok(peer.clone())
}

fn content_encoding_is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let mut gzip = false;
    for v in headers.get_all(header::CONTENT_ENCODING) {
        let v = v
            .to_str()
            .map_err(|_| ApiError::UnsupportedEncoding("unreadable Content-Encoding".into()))?;
        for token in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
                if gzip {
                    return Err(ApiError::UnsupportedEncoding("gzip applied twice".into()));
                }
                gzip = true;
            } else if !token.eq_ignore_ascii_case("identity") {
                return Err(ApiError::UnsupportedEncoding(format!(
                    "{token} (only gzip is accepted)"
                )));
            }
        }
    }
    Ok(gzip)
}
