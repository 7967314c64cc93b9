//! Query-API authentication (`Authorization: Bearer <api key>`, looked up by
//! hash on every request so new keys work at once) and the organisation
//! isolation rule: an `org` key sees its own organisation only.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::{ApiError, AppState};
use crate::secret;
use crate::store::ApiKeyRole;

/// The authenticated caller of a query endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    pub role: ApiKeyRole,
    /// Set for (and only for) `org` keys.
    pub org: Option<String>,
}

impl ApiCaller {
    /// 403 unless the caller may see `code`.
    pub fn check_org(&self, code: &str) -> Result<(), ApiError> {
        match self.role {
            ApiKeyRole::National | ApiKeyRole::Admin => Ok(()),
            ApiKeyRole::Org if self.org.as_deref() == Some(code) => Ok(()),
            ApiKeyRole::Org => Err(ApiError::forbidden(
                "forbidden",
                "this API key is limited to another organisation",
            )),
        }
    }

    /// 403 unless the caller may use national views.
    pub fn check_national(&self) -> Result<(), ApiError> {
        match self.role {
            ApiKeyRole::National | ApiKeyRole::Admin => Ok(()),
            ApiKeyRole::Org => Err(ApiError::forbidden(
                "forbidden",
                "national views need a national or admin API key",
            )),
        }
    }

    /// The organisation lists are restricted to, if any.
    pub fn only_org(&self) -> Option<&str> {
        match self.role {
            ApiKeyRole::Org => Some(self.org.as_deref().unwrap_or("")),
            _ => None,
        }
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let missing = || {
            ApiError::unauthorized(
                "unauthorized",
                "an API key is required: Authorization: Bearer <key>",
            )
        };
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(missing)?
            .to_str()
            .map_err(|_| missing())?;
        let (scheme, key) = header.trim().split_once(' ').ok_or_else(missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(missing());
        }
        let key = key.trim();
        if key.is_empty() || key.len() > 256 {
            return Err(missing());
        }
        match st.store.api_key(&secret::hash(key)).await? {
            Some((role, org)) => Ok(ApiCaller { role, org }),
            None => Err(ApiError::unauthorized(
                "unauthorized",
                "the API key is not known",
            )),
        }
    }
}
