//! The query API: organisations, their assets, findings and stored
//! reports, and the national per-code view. Every list answers `{"items", "next_cursor"}`
//! and takes `limit` (1..=1000, default 100), `cursor` and `sort`; unknown
//! or malformed parameters are a 400.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use trustwatch_common::codes::is_valid_code;
use trustwatch_common::identity::is_valid_org_code;
use trustwatch_common::{Category, Severity};

use super::auth::ApiCaller;
use super::{ApiError, AppState};
use crate::store::query::{
    decode_cursor, find_sort, AssetItem, FindingFilter, FindingItem, NationalItem, OrgItem, Page,
    PageReq, ReportItem, Sort, ASSET_SORTS, FINDING_SORTS, NATIONAL_SORTS, ORG_SORTS, REPORT_SORTS,
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

pub async fn list_orgs(
    State(st): State<AppState>,
    caller: ApiCaller,
    uri: Uri,
) -> Result<Json<Page<OrgItem>>, ApiError> {
    let p: ListParams = params(&uri)?;
    let page = page_req(
        ORG_SORTS,
        p.limit.as_deref(),
        p.cursor.as_deref(),
        p.sort.as_deref(),
    )?;
    Ok(Json(st.store.orgs_page(caller.only_org(), &page).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

pub async fn get_org(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Json<OrgItem>, ApiError> {
    let code = org_code(path)?;
    caller.check_org(&code)?;
    let _: NoParams = params(&uri)?;
    match st.store.org_item(&code).await? {
        Some(o) => Ok(Json(o)),
        None => Err(ApiError::not_found(
            "org_not_found",
            format!("no organisation {code:?}"),
        )),
    }
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
}

fn finding_filter(p: &FindingParams) -> Result<FindingFilter, ApiError> {
    let bad = |d: String| ApiError::bad_request("invalid_query", d);
    let status = match p.status.as_deref() {
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
    Ok(Json(st.store.national_page(&code, &page).await?))
}
