//! `GET /api/v1/orgs/{code}/report?format=html|csv|json[&scope=org|tree]`:
//! a report on demand, as the scheduled ones are made (`crate::report`),
//! from the stored scores. `scope=org` (the default) covers the
//! organisation alone, `scope=tree` it and all its descendants (national
//! and admin keys only). An `org` key gets its own organisation only.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use trustwatch_common::identity::is_valid_org_code;

use super::auth::ApiCaller;
use super::{ApiError, AppState};
use crate::report::{build, render, Format, ReportError, Scope};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    format: Option<String>,
    scope: Option<String>,
}

pub async fn org_report(
    State(st): State<AppState>,
    caller: ApiCaller,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let Path(code) = path.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    caller.check_org(&code)?;
    let p: ReportParams = Query::try_from_uri(&uri)
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let format = Format::parse(p.format.as_deref().unwrap_or("json"))
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let scope = match p.scope.as_deref().unwrap_or("org") {
        "org" => Scope::Org(code.clone()),
        "tree" => {
            caller.check_national()?;
            Scope::Parent(code.clone())
        }
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("unknown scope {other:?} (expected org or tree)"),
            ))
        }
    };
    let not_found = || ApiError::not_found("org_not_found", format!("no organisation {code:?}"));
    if !is_valid_org_code(&code) {
        return Err(not_found());
    }
    let now = st.clock.now();
    let data = match build(&st.store, &scope, now, None).await {
        Ok(d) => d,
        Err(ReportError::OrgNotFound(_)) => return Err(not_found()),
        Err(ReportError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    let bytes = render(&data, format);
    let day = crate::store::scores::fmt_day(now.date());
    let disposition = format!(
        "attachment; filename=\"report_{}_{day}.{}\"",
        scope.slug(),
        format.ext()
    );
    let mut r = ([(CONTENT_TYPE, format.content_type())], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    if format == Format::Html {
        r.headers_mut().insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(crate::web::CSP),
        );
    }
    Ok(r)
}
