//! The query API: organisations with their scores, their breakdown,
//! history and changes, assets, findings and stored reports, and the
//! national per-code view. Every list answers `{"items", "next_cursor"}`
//! and takes `limit` (1..=1000, default 100), `cursor` and `sort`; unknown
//! or malformed parameters are a 400. Scores are read from what the last
//! refresh stored (`store::scores`), never aggregated per request.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use trustwatch_common::codes::is_valid_code;
use trustwatch_common::identity::is_valid_org_code;
use trustwatch_common::{Category, Severity};

use super::auth::ApiCaller;
use super::{ApiError, AppState};
use crate::clock::{parse_rfc3339, to_ms};
use crate::score::{FixItem, Grade};
use crate::store::query::{
    decode_cursor, find_sort, AssetItem, Change, FindingFilter, FindingItem, NationalItem,
    OrgFilter, OrgItem, Page, PageReq, ReportItem, Sort, ASSET_SORTS, FINDING_SORTS, HISTORY_SORTS,
    NATIONAL_SORTS, ORG_SORTS, REPORT_SORTS,
};
use crate::store::scores::{
    day_of, end_of_day, fmt_day, parse_day, Breakdown, Changes, HistoryFilter, HistoryItem,
};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

fn params<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

fn page_req(
    sorts: &'static [Sort],
    limit: Option<&str>,
    cursor: Option<&str>,
    sort: Option<&str>,
) -> Result<PageReq, ApiError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("limit must be an integer from 1 to {MAX_LIMIT}"),
                ))
            }
        },
    };
    let sort = find_sort(sorts, sort).map_err(|e| ApiError::bad_request("invalid_query", e))?;
    let after = cursor
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(&sort, c))
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_cursor", e))?;
    Ok(PageReq { sort, after, limit })
}

fn org_code(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(code) = path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    Ok(code)
}

/// The organisation of a path, once the caller may see it and it exists.
async fn visible_org(st: &AppState, caller: &ApiCaller, code: &str) -> Result<(), ApiError> {
    caller.check_org(code)?;
    if !is_valid_org_code(code) || !st.store.org_exists(code).await? {
        return Err(ApiError::not_found(
            "org_not_found",
            format!("no organisation {code:?}"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgParams {
    limit: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    /// Comma-separated grades.
    grade: Option<String>,
    /// A parent's code; empty: top-level organisations only.
    parent: Option<String>,
}

fn parent_filter(p: Option<&str>) -> Result<Option<Option<String>>, ApiError> {
    match p {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(p) if is_valid_org_code(p) => Ok(Some(Some(p.to_owned()))),
        Some(p) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{p:?} is not an organisation code"),
        )),
    }
}

pub async fn list_orgs(
    State(st): State<AppState>,
    caller: ApiCaller,
    uri: Uri,
) -> Result<Json<Page<OrgItem>>, ApiError> {
    let p: OrgParams = params(&uri)?;
    let page = page_req(
        ORG_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    let mut grades = Vec::new();
    for g in p
        .grade
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|g| !g.is_empty())
    {
        match Grade::parse(g.trim()) {
            Some(g) => grades.push(g.as_str().to_owned()),
            None => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown grade {g:?} (expected A, B, C, D or F, comma-separated)"),
                ))
            }
        }
    }
    let filter = OrgFilter {
        only: caller.only_org().map(str::to_owned),
        parent: parent_filter(p.parent.as_deref())?,
        grades,
    };
    Ok(Json(st.store.orgs_page(&filter, &page).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// The change since the previous day with a history point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub previous_day: String,
    pub previous_score: f64,
    pub previous_grade: String,
    pub delta: f64,
}

/// `GET /api/v1/orgs/{code}`: the list item plus the breakdown, what to
/// fix first and the trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgDetail {
    #[serde(flatten)]
    pub item: OrgItem,
    /// Null before the first refresh.
    pub breakdown: Option<Breakdown>,
    pub top_to_fix: Vec<FixItem>,
    pub trend: Option<Trend>,
}

pub async fn get_org(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<OrgDetail>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let _: NoParams = params(&uri)?;
    let not_found = || ApiError::not_found("org_not_found", format!("no organisation {code:?}"));
    if !is_valid_org_code(&code) {
        return Err(not_found());
    }
    let Some(item) = st.store.org_item(&code).await? else {
        return Err(not_found());
    };
    let score = st.store.org_score(&code).await?;
    let trend = match (&item.score, &score) {
        (Some(now), Some(s)) => st
            .store
            .previous_point(&code, &day_of(s.computed_at))
            .await?
            .map(|(day, prev, grade)| Trend {
                previous_day: day,
                previous_score: prev,
                previous_grade: grade,
                delta: ((now - prev) * 10.0).round() / 10.0,
            }),
        _ => None,
    };
    let (breakdown, top_to_fix) = match score {
        Some(s) => (Some(s.detail.breakdown), s.detail.top_to_fix),
        None => (None, Vec::new()),
    };
    Ok(Json(OrgDetail {
        item,
        breakdown,
        top_to_fix,
        trend,
    }))
}

/// An instant of a query: RFC 3339, or a day `YYYY-MM-DD` (its start, or
/// with `end`, the start of the next day).
fn instant(name: &str, v: &str, end: bool) -> Result<i64, ApiError> {
    if let Some(d) = parse_day(v) {
        return Ok(if end {
            end_of_day(d) + 1
        } else {
            end_of_day(d) + 1 - 86_400_000
        });
    }
    parse_rfc3339(v).map(to_ms).map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            format!("{name} must be an RFC 3339 instant or a day YYYY-MM-DD"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    limit: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    from: Option<String>,
    to: Option<String>,
    model_version: Option<String>,
}

/// A day parameter: `YYYY-MM-DD`, or an RFC 3339 instant (its UTC day).
fn day_param(name: &str, v: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    if let Some(d) = parse_day(v) {
        return Ok(Some(fmt_day(d)));
    }
    instant(name, v, false).map(|ms| Some(day_of(ms)))
}

pub async fn org_history(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<Page<HistoryItem>>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let p: HistoryParams = params(&uri)?;
    let page = page_req(
        HISTORY_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    let filter = HistoryFilter {
        from: day_param("from", p.from.as_deref())?,
        to: day_param("to", p.to.as_deref())?,
        model_version: p.model_version.filter(|v| !v.is_empty()),
    };
    visible_org(&st, &caller, &code).await?;
    Ok(Json(st.store.history_page(&code, &filter, &page).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesParams {
    from: Option<String>,
    to: Option<String>,
}

/// Default period of `/changes`: the last 7 days.
const DEFAULT_CHANGES_PERIOD_MS: i64 = 7 * 86_400_000;

pub async fn org_changes(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<Changes>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let p: ChangesParams = params(&uri)?;
    let now = to_ms(st.clock.now());
    let to = match p.to.as_deref() {
        Some(v) => instant("to", v, true)?,
        None => now,
    };
    let from = match p.from.as_deref() {
        Some(v) => instant("from", v, false)?,
        None => to - DEFAULT_CHANGES_PERIOD_MS,
    };
    if from > to {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from must not be after to",
        ));
    }
    visible_org(&st, &caller, &code).await?;
    Ok(Json(st.store.changes(&code, from, to, now).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetParams {
    limit: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    kind: Option<String>,
}

pub async fn list_assets(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<Page<AssetItem>>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let p: AssetParams = params(&uri)?;
    let page = page_req(
        ASSET_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    if let Some(k) = p.kind.as_deref() {
        if !["host", "tls_endpoint", "device"].contains(&k) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown asset kind {k:?} (expected host, tls_endpoint or device)"),
            ));
        }
    }
    visible_org(&st, &caller, &code).await?;
    Ok(Json(
        st.store
            .assets_page(&code, p.kind.as_deref(), &page)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingParams {
    limit: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    code: Option<String>,
    status: Option<String>,
    /// `new`, `fixed` or `reopened` (with `from` and `to`).
    change: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn finding_filter(p: &FindingParams) -> Result<FindingFilter, ApiError> {
    let bad = |d: String| ApiError::bad_request("invalid_query", d);
    let change = match p.change.as_deref() {
        None => {
            if p.from.is_some() || p.to.is_some() {
                return Err(bad("from and to go with change=new|fixed|reopened".into()));
            }
            None
        }
        Some(c) => {
            let c = match c {
                "new" => Change::New,
                "fixed" => Change::Fixed,
                "reopened" => Change::Reopened,
                other => {
                    return Err(bad(format!(
                        "unknown change {other:?} (expected new, fixed or reopened)"
                    )))
                }
            };
            let to = match p.to.as_deref() {
                Some(v) => instant("to", v, true)?,
                None => i64::MAX,
            };
            let from = match p.from.as_deref() {
                Some(v) => instant("from", v, false)?,
                None => i64::MIN,
            };
            Some((c, from, to))
        }
    };
    let status = match p.status.as_deref() {
        // A change filter lists findings whatever their status now.
        None if change.is_some() => None,
        None | Some("open") => Some("open"),
        Some("resolved") => Some("resolved"),
        Some("all") => None,
        Some(other) => {
            return Err(bad(format!(
                "unknown status {other:?} (expected open, resolved or all)"
            )))
        }
    };
    let category = p
        .category
        .as_deref()
        .map(str::parse::<Category>)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let severity = p
        .severity
        .as_deref()
        .map(str::parse::<Severity>)
        .transpose()
        .map_err(|e| bad(e.to_string()))?;
    let code = match p.code.as_deref() {
        None => None,
        Some(c) if is_valid_code(c) => Some(c.to_owned()),
        Some(c) => return Err(bad(format!("{c:?} is not a finding code"))),
    };
    Ok(FindingFilter {
        status,
        category,
        severity,
        code,
        change,
    })
}

pub async fn list_findings(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<Page<FindingItem>>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let p: FindingParams = params(&uri)?;
    let page = page_req(
        FINDING_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    let filter = finding_filter(&p)?;
    visible_org(&st, &caller, &code).await?;
    Ok(Json(st.store.findings_page(&code, &filter, &page).await?))
}

pub async fn list_reports(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<Page<ReportItem>>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let p: ListParams = params(&uri)?;
    let page = page_req(
        REPORT_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    visible_org(&st, &caller, &code).await?;
    Ok(Json(st.store.reports_page(&code, &page).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationalParams {
    limit: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    code: Option<String>,
    /// Only children of this organisation.
    parent: Option<String>,
}

pub async fn national_findings(
    State(st): State<AppState>,
    caller: ApiCaller,
    uri: Uri,
) -> Result<Json<Page<NationalItem>>, ApiError> {
    caller.check_national()?;
    let p: NationalParams = params(&uri)?;
    let page = page_req(
        NATIONAL_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    let code = match p.code.as_deref() {
        Some(c) if is_valid_code(c) => c.to_owned(),
        Some(c) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{c:?} is not a finding code"),
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "the code parameter is required, e.g. ?code=legacy.smb.v1",
            ))
        }
    };
    let parent = match p.parent.as_deref() {
        None => None,
        Some(p) if is_valid_org_code(p) => Some(p),
        Some(p) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{p:?} is not an organisation code"),
            ))
        }
    };
    Ok(Json(st.store.national_page(&code, parent, &page).await?))
}
