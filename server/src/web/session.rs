//! Who is looking at the dashboard: the same API keys as the query API,
//! given as `Authorization: Bearer <key>` or through a session opened by
//! the `/login` form.
//!
//! The session cookie is `__Host-tw_session=<tws_ + 64 hex>`, `HttpOnly;
//! Secure; SameSite=Strict; Path=/`, for [`SESSION_TTL`]. The server keeps
//! only the secret's SHA-256 and the hash of the key it was opened with
//! (`store::sessions`); logging out deletes that row and clears the cookie.

use std::time::Duration;

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::HeaderMap;

use super::WebError;
use crate::api::auth::ApiCaller;
use crate::api::AppState;
use crate::clock::to_ms;
use crate::secret;

/// Name of the session cookie (the `__Host-` prefix pins it to this host,
/// path `/`, HTTPS).
pub const COOKIE_NAME: &str = "__Host-tw_session";
/// Prefix of session secrets.
pub const SESSION_PREFIX: &str = "tws_";
/// How long a dashboard session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value that opens a session.
pub fn set_cookie(secret: &str) -> String {
    format!(
        "{COOKIE_NAME}={secret}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// The caller, if any: `Ok(None)` means "not logged in" (the pages send
/// the browser to `/login`); a bearer key that is not known is a 401.
pub async fn caller(st: &AppState, headers: &HeaderMap) -> Result<Option<ApiCaller>, WebError> {
    if let Some(h) = headers.get(AUTHORIZATION) {
        let bad = || WebError::new(401, "Unauthorized", "The API key is not known.");
        let h = h.to_str().map_err(|_| bad())?;
        let (scheme, key) = h.trim().split_once(' ').ok_or_else(bad)?;
        let key = key.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() || key.len() > 256 {
            return Err(bad());
        }
        return match st.store.api_key(&secret::hash(key)).await? {
            Some((role, org)) => Ok(Some(ApiCaller { role, org })),
            None => Err(bad()),
        };
    }
    let Some(cookie) = session_cookie(headers) else {
        return Ok(None);
    };
    let now = to_ms(st.clock.now());
    Ok(st
        .store
        .session(&secret::hash(&cookie), now)
        .await?
        .map(|(role, org)| ApiCaller { role, org }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-tw_session=tws_ab ; b=2"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("tws_ab"));
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("tw_session=x"));
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn cookies_are_http_only_secure_and_strict() {
        let c = set_cookie("tws_x");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{c}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
