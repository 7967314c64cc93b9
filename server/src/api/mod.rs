//! The HTTP API: the route table ([`routes`], documented by
//! `openapi.json`; it includes the dashboard's pages of [`crate::web`]),
//! shared state, request-body reading, metrics middleware, and JSON answers
//! for unknown routes and methods.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use hyper::body::Body as _;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::pki::Ca;
use crate::store::Store;
use crate::web;

pub mod auth;
pub mod decode;
pub mod enroll;
pub mod error;
pub mod ingest;
pub mod openapi;
pub mod query;
pub mod report;

pub use error::ApiError;

/// Longest a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Size limits of request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A report body as sent (compressed or not).
    pub max_body_bytes: u64,
    /// A report after decompression.
    pub max_decompressed_bytes: u64,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub ca: Arc<Ca>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    /// The matching policy (`[eol]` of the config).
    pub policy: crate::vuln::Policy,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
        }
    }
}

/// One route of the API: method, path (axum syntax, which is also OpenAPI's
/// `{param}` syntax) and handler.
pub struct Route {
    pub verb: Verb,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(verb: Verb, path: &'static str, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = match verb {
        Verb::Get => get(h),
        Verb::Post => post(h),
    };
    Route {
        verb,
        path,
        handler,
    }
}

/// Every route the router serves. `openapi.json` documents exactly these
/// (a test holds them equal).
pub fn routes() -> Vec<Route> {
    use trustwatch_common::identity::{ENROLL_PATH, REPORTS_PATH};
    vec![
        route(Verb::Post, ENROLL_PATH, enroll::enroll),
        route(Verb::Post, REPORTS_PATH, ingest::post_report),
        route(Verb::Get, "/api/v1/orgs", query::list_orgs),
        route(Verb::Get, "/api/v1/orgs/{code}", query::get_org),
        route(Verb::Get, "/api/v1/orgs/{code}/assets", query::list_assets),
        route(
            Verb::Get,
            "/api/v1/orgs/{code}/findings",
            query::list_findings,
        ),
        route(
            Verb::Get,
            "/api/v1/orgs/{code}/reports",
            query::list_reports,
        ),
        route(Verb::Get, "/api/v1/orgs/{code}/history", query::org_history),
        route(Verb::Get, "/api/v1/orgs/{code}/changes", query::org_changes),
        route(Verb::Get, "/api/v1/orgs/{code}/report", report::org_report),
        route(Verb::Get, "/api/v1/findings", query::national_findings),
        route(Verb::Get, "/api/v1/openapi.json", openapi::openapi),
        route(Verb::Get, "/healthz", healthz),
        route(Verb::Get, "/metrics", metrics),
        route(Verb::Get, "/", web::index),
        route(Verb::Get, "/login", web::login_form),
        route(Verb::Post, "/login", web::login),
        route(Verb::Post, "/logout", web::logout),
        route(Verb::Get, "/orgs/{code}", web::org_page),
        route(Verb::Get, "/orgs/{code}/finding", web::finding_page),
    ]
}

/// The router of the whole API.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for x in routes() {
        r = r.route(x.path, x.handler);
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

async fn count_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let resp = next.run(req).await;
    st.metrics.http_request(&route, resp.status().as_u16());
    resp
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn healthz(State(st): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), st.store.ping()).await {
        Ok(Ok(())) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Ok(Err(e)) => ApiError::Unavailable(format!("database: {e}")).into_response(),
        Err(_) => ApiError::Unavailable("database did not answer in time".into()).into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let mut text = st.metrics.render();
    text.push_str(&crate::metrics::render_feed_cache(
        &st.store.feed_cache().stats(),
    ));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Reads a request body, refusing (413) one longer than `limit` without
/// reading past it, and giving up (408) after [`BODY_TIMEOUT`].
pub async fn read_body(body: Body, limit: u64) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::TooLarge(format!("the request body exceeds {limit} bytes"));
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let read = async {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::bad_request("bad_request", format!("reading the body failed: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                let total = (buf.len() as u64).saturating_add(data.len() as u64);
                if total > limit {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| ApiError::Timeout)?
}
