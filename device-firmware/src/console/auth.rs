//! Who may do what. The operator token (`<state>/operator.token`) opens everything: sent as
//! `Authorization: Bearer <token>` by `host-trainer deploy` and scripts, or exchanged once by the
//! console page for a session cookie (`HttpOnly; SameSite=Strict`, so other sites can neither
//! read it nor ride on it). Secrets are compared in constant time. Without a token only the page
//! itself, `/healthz` and `/metrics` answer; a browser on the booth itself (loopback) may also
//! watch the live view, for a local kiosk screen.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;

pub const COOKIE: &str = "doppel_session";
/// Sessions kept; the oldest is forgotten first.
const MAX_SESSIONS: usize = 16;

/// Session ids handed out by `POST /api/login`, newest last.
#[derive(Default)]
pub struct Sessions(Mutex<VecDeque<String>>);

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    pub fn open(&self) -> Option<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).ok()?;
        let id = hex(&raw);
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() == MAX_SESSIONS {
            s.pop_front();
        }
        s.push_back(id.clone());
        Some(id)
    }

    pub fn close(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| !same(s, id));
    }

    fn valid(&self, id: &str) -> bool {
        // Every stored id is compared (no early exit that would time which one matched).
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .fold(false, |found, s| found | same(s, id))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn token_matches(state: &AppState, given: &str) -> bool {
    same(given.trim(), state.updates.token().as_str())
}

fn session_cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

fn authorised(parts: &Parts, state: &AppState) -> bool {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (bearer, session_cookie(parts)) {
        (Some(token), _) => token_matches(state, token),
        (None, Some(id)) => state.sessions.valid(id),
        (None, None) => false,
    }
}

/// 401 with a hint.
pub struct Unauthorised;

impl IntoResponse for Unauthorised {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"doppel\"")],
            axum::Json(serde_json::json!({
                "error": "operator token needed: `Authorization: Bearer <token>` (the token is in <state-dir>/operator.token on the booth)"
            })),
        )
            .into_response()
    }
}

/// The operator: a valid bearer token or session cookie.
pub struct Operator;

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = Unauthorised;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if authorised(parts, state) {
            Ok(Operator)
        } else {
            Err(Unauthorised)
        }
    }
}

/// Someone allowed to watch the live view: the operator, or a browser on the booth itself.
pub struct Viewer;

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = Unauthorised;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let loopback = state.config.loopback_view
            && parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
        if loopback || authorised(parts, state) {
            Ok(Viewer)
        } else {
            Err(Unauthorised)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_bounded_and_closable() {
        let s = Sessions::default();
        let first = s.open().unwrap();
        assert_eq!(first.len(), 64);
        assert!(s.valid(&first));
        assert!(!s.valid("nope"));
        assert!(!s.valid(&first[..63]));
        for _ in 0..MAX_SESSIONS {
            s.open().unwrap();
        }
        assert!(!s.valid(&first), "the oldest session is forgotten");
        let last = s.open().unwrap();
        s.close(&last);
        assert!(!s.valid(&last));
    }
}
