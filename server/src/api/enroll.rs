//! `POST /api/v1/enroll`: an enrolment token and a CSR in, a client
//! certificate for a new agent out. The token use and the agent row are
//! committed together; a refused token or CSR changes nothing. The token is
//! judged first: a wrong, expired or used-up token is a 401 whatever the CSR.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use trustwatch_common::report::{EnrollRequest, EnrollResponse, MAX_ID_LEN};
use uuid::Uuid;

use super::{read_body, ApiError, AppState};
use crate::clock::to_ms;
use crate::pki::Csr;
use crate::secret;
use crate::store::admin::{consume_token, insert_agent};

/// Largest enrolment request body.
pub const MAX_ENROLL_BODY: u64 = 64 * 1024;

pub async fn enroll(State(st): State<AppState>, body: Body) -> Response {
    match enroll_inner(&st, body).await {
        Ok(r) => (StatusCode::CREATED, Json(r)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn enroll_inner(st: &AppState, body: Body) -> Result<EnrollResponse, ApiError> {
    let bytes = read_body(body, MAX_ENROLL_BODY).await?;
    let req: EnrollRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    // Parsed now, judged after the token: a bad token is a 401 whatever the
    // CSR, and a bad CSR does not use up a good token (rolled back).
    let csr = Csr::from_pem(&req.csr);
    let hostname = req.hostname.filter(|h| !h.is_empty());
    if hostname.as_ref().is_some_and(|h| h.len() > MAX_ID_LEN) {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!("hostname longer than {MAX_ID_LEN} bytes"),
        ));
    }
    let token_hash = secret::hash(req.token.trim());
    let now = st.clock.now();
    let now_ms = to_ms(now);

    let mut tx = st
        .store
        .pool()
        .begin()
        .await
        .map_err(crate::store::StoreError::from)?;
    let org = match consume_token(&mut tx, &token_hash, now_ms).await? {
        Ok(org) => org,
        Err(why) => {
            tx.rollback()
                .await
                .map_err(crate::store::StoreError::from)?;
            return Err(ApiError::unauthorized("invalid_token", why.to_string()));
        }
    };
    let csr = match csr {
        Ok(c) => c,
        Err(e) => {
            tx.rollback()
                .await
                .map_err(crate::store::StoreError::from)?;
            return Err(ApiError::bad_request("invalid_csr", e.to_string()));
        }
    };
    let agent_id = Uuid::now_v7();
    let issued = st
        .ca
        .sign_agent(&csr, agent_id, &org, now)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    insert_agent(
        &mut tx,
        &agent_id.to_string(),
        &org,
        hostname.as_deref(),
        &issued.serial,
        now_ms,
    )
    .await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    tracing::info!(%agent_id, %org, hostname = hostname.as_deref().unwrap_or(""), "agent enrolled");
    Ok(EnrollResponse {
        agent_id,
        org,
        certificate: issued.pem,
        ca: st.ca.cert_pem().to_owned(),
    })
}
