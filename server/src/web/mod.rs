//! The dashboard at `/`: server-rendered HTML (no script, no front-end
//! build), behind the same API keys as the query API ([`session`]).
//!
//! Pages: `/` the league table (`?sort=` any sort of `/api/v1/orgs`, the
//! column headers link them; `?cursor=` pages), `/orgs/{code}` an
//! organisation (trend chart, category breakdown, what to fix first, open
//! findings), `/orgs/{code}/finding?kind=&asset=&code=&subject=` one
//! finding with its evidence, `/login` (GET form, POST opens a session),
//! `/logout` (POST). An `org` key sees its own organisation only: the
//! league table lists only it, other organisations' pages answer 403.
//! Without a key or session, pages send the browser to `/login` (303).
//! Every answer carries a strict Content-Security-Policy (no script at all)
//! and `Cache-Control: no-store`.

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use trustwatch_common::identity::is_valid_org_code;

use crate::api::auth::ApiCaller;
use crate::api::AppState;
use crate::clock::to_ms;
use crate::report::HistoryPoint;
use crate::score::MODEL_VERSION;
use crate::secret;
use crate::store::query::{
    decode_cursor, find_sort, FindingFilter, OrgFilter, PageReq, FINDING_SORTS, HISTORY_SORTS,
    ORG_SORTS,
};
use crate::store::scores::{fmt_day, HistoryFilter};
use crate::store::{ApiKeyRole, StoreError};

pub mod pages;
pub mod session;

/// The policy of every dashboard page: nothing but inline styles and
/// same-origin forms.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Rows per page of the league table and of an organisation's findings.
pub const PAGE_ROWS: u32 = 100;

/// A dashboard failure, answered as an HTML page.
#[derive(Debug)]
pub struct WebError {
    status: u16,
    title: &'static str,
    detail: String,
    who: Option<ApiCaller>,
}

impl WebError {
    pub fn new(status: u16, title: &'static str, detail: impl Into<String>) -> Self {
        WebError {
            status,
            title,
            detail: detail.into(),
            who: None,
        }
    }

    fn by(mut self, who: &ApiCaller) -> Self {
        self.who = Some(who.clone());
        self
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "dashboard request failed");
        WebError::new(
            500,
            "Internal error",
            "The server could not answer; it has logged why.",
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = pages::error(self.status, self.title, &self.detail, self.who.as_ref());
        html(self.status, body)
    }
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
}

/// An HTML answer with the dashboard's headers.
pub fn html(status: u16, body: String) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    secure_headers(r.headers_mut());
    r
}

fn redirect(to: &'static str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    secure_headers(r.headers_mut());
    r
}

/// The caller, or the answer that sends the browser to `/login`.
async fn require(st: &AppState, headers: &HeaderMap) -> Result<ApiCaller, Response> {
    match session::caller(st, headers).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => {
            // A stale cookie is cleared on the way.
            let clear = session::session_cookie(headers).map(|_| session::clear_cookie());
            Err(redirect("/login", clear))
        }
        Err(e) => Err(e.into_response()),
    }
}

fn params<T: serde::de::DeserializeOwned>(uri: &Uri, who: &ApiCaller) -> Result<T, WebError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(t)| t)
        .map_err(|e| WebError::new(400, "Bad request", e.body_text()).by(who))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeagueParams {
    sort: Option<String>,
    cursor: Option<String>,
}

/// `GET /`: the league table.
pub async fn index(State(st): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let who = match require(&st, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    league(&st, &who, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn league(st: &AppState, who: &ApiCaller, uri: &Uri) -> Result<Response, WebError> {
    let p: LeagueParams = params(uri, who)?;
    let sort_name = p.sort.as_deref().unwrap_or("-score");
    let sort = find_sort(ORG_SORTS, Some(sort_name))
        .map_err(|e| WebError::new(400, "Bad request", e).by(who))?;
    let after = p
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(&sort, c))
        .transpose()
        .map_err(|e| WebError::new(400, "Bad request", e).by(who))?;
    let filter = OrgFilter {
        only: who.only_org().map(str::to_owned),
        ..OrgFilter::default()
    };
    let page = st
        .store
        .orgs_page(
            &filter,
            &PageReq {
                sort,
                after,
                limit: PAGE_ROWS,
            },
        )
        .await?;
    Ok(html(
        200,
        pages::league(
            who,
            &page.items,
            sort.name,
            page.next_cursor.as_deref(),
            MODEL_VERSION,
        ),
    ))
}

fn org_code(
    path: Result<Path<String>, PathRejection>,
    who: &ApiCaller,
) -> Result<String, WebError> {
    let Path(code) = path.map_err(|e| WebError::new(400, "Bad request", e.body_text()).by(who))?;
    who.check_org(&code).map_err(|_| {
        WebError::new(
            403,
            "Forbidden",
            "This key is limited to another organisation.",
        )
        .by(who)
    })?;
    if !is_valid_org_code(&code) {
        return Err(WebError::new(404, "Not found", "No such organisation.").by(who));
    }
    Ok(code)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgParams {
    cursor: Option<String>,
}

/// `GET /orgs/{code}`: one organisation.
pub async fn org_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    let who = match require(&st, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    org(&st, &who, path, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn org(
    st: &AppState,
    who: &ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
) -> Result<Response, WebError> {
    let code = org_code(path, who)?;
    let p: OrgParams = params(uri, who)?;
    let Some(item) = st.store.org_item(&code).await? else {
        return Err(WebError::new(404, "Not found", "No such organisation.").by(who));
    };
    let score = st.store.org_score(&code).await?;
    let now = st.clock.now();
    let history = st
        .store
        .history_page(
            &code,
            &HistoryFilter {
                from: Some(fmt_day(
                    now.date() - time::Duration::days(crate::report::HISTORY_DAYS - 1),
                )),
                to: None,
                model_version: None,
            },
            &PageReq {
                sort: find_sort(HISTORY_SORTS, Some("day")).map_err(StoreError::Corrupt)?,
                after: None,
                limit: 1000,
            },
        )
        .await?;
    let history: Vec<HistoryPoint> = history
        .items
        .into_iter()
        .map(|h| HistoryPoint {
            day: h.day,
            score: h.score,
            grade: h.grade,
        })
        .collect();
    let sort = find_sort(FINDING_SORTS, None).map_err(StoreError::Corrupt)?;
    let after = p
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(&sort, c))
        .transpose()
        .map_err(|e| WebError::new(400, "Bad request", e).by(who))?;
    let findings = st
        .store
        .findings_page(
            &code,
            &FindingFilter {
                status: Some("open"),
                ..FindingFilter::default()
            },
            &PageReq {
                sort,
                after,
                limit: PAGE_ROWS,
            },
        )
        .await?;
    let (breakdown, top) = match &score {
        Some(s) => (Some(&s.detail.breakdown), s.detail.top_to_fix.as_slice()),
        None => (None, &[][..]),
    };
    Ok(html(
        200,
        pages::org(
            who,
            &pages::OrgPage {
                org: &item,
                breakdown,
                top_to_fix: top,
                history: &history,
                findings: &findings.items,
                next_cursor: findings.next_cursor.as_deref(),
                can_open_members: who.role != ApiKeyRole::Org,
            },
        ),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FindingParams {
    kind: String,
    asset: String,
    code: String,
    #[serde(default)]
    subject: String,
}

/// `GET /orgs/{code}/finding`: one finding with its evidence.
pub async fn finding_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Response {
    let who = match require(&st, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    finding(&st, &who, path, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn finding(
    st: &AppState,
    who: &ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: &Uri,
) -> Result<Response, WebError> {
    let code = org_code(path, who)?;
    let p: FindingParams = params(uri, who)?;
    let missing = || WebError::new(404, "Not found", "No such finding.").by(who);
    let Some(item) = st.store.org_item(&code).await? else {
        return Err(missing());
    };
    let Some(f) = st
        .store
        .finding(&code, &p.kind, &p.asset, &p.code, &p.subject)
        .await?
    else {
        return Err(missing());
    };
    Ok(html(200, pages::finding(who, &item, &f)))
}

/// `GET /login`.
pub async fn login_form() -> Response {
    html(200, pages::login(None))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    key: String,
}

/// `POST /login`: opens a session for a known API key.
pub async fn login(
    State(st): State<AppState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return html(400, pages::login(Some("The form could not be read.")));
    };
    let key = f.key.trim();
    if key.is_empty() || key.len() > 256 {
        return html(401, pages::login(Some("That API key is not known.")));
    }
    let key_hash = secret::hash(key);
    match st.store.api_key(&key_hash).await {
        Ok(Some(_)) => {}
        Ok(None) => return html(401, pages::login(Some("That API key is not known."))),
        Err(e) => return WebError::from(e).into_response(),
    }
    let Ok(token) = secret::generate(session::SESSION_PREFIX) else {
        return WebError::new(500, "Internal error", "No random numbers.").into_response();
    };
    let now = to_ms(st.clock.now());
    let ttl = i64::try_from(session::SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    if let Err(e) = st
        .store
        .open_session(
            &secret::hash(&token),
            &key_hash,
            now,
            now.saturating_add(ttl),
        )
        .await
    {
        return WebError::from(e).into_response();
    }
    redirect("/", Some(session::set_cookie(&token)))
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(c) = session::session_cookie(&headers) {
        if let Err(e) = st.store.close_session(&secret::hash(&c)).await {
            return WebError::from(e).into_response();
        }
    }
    redirect("/login", Some(session::clear_cookie()))
}
