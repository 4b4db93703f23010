//! HTTP routes of signaling: the WebSocket, the token endpoint and stats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Claims, Grants};
use crate::protocol::RoomMode;
use crate::server::Signaling;
use crate::{ErrorCode, RoomName};

/// Routes: `GET /ws`, `POST /api/token` (development mode), `GET /api/stats`, `GET /healthz`.
pub fn router(sig: Signaling) -> Router {
    public_router(sig.clone()).merge(stats_router(sig))
}

/// Every route but the statistics: what faces clients.
pub fn public_router(sig: Signaling) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/api/token", post(mint_token))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(sig)
}

/// `GET /api/stats` alone, for a listener of its own (`[server] stats_listen`).
pub fn stats_router(sig: Signaling) -> Router {
    Router::new()
        .route("/api/stats", get(stats))
        .with_state(sig)
}

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn ws(
    State(sig): State<Signaling>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin_allowed(&sig.access().allowed_origins, origin.as_bytes()) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::PermissionDenied,
                "this origin may not open the WebSocket",
            )
            .into_response();
        }
    }
    // The library enforces the limit as a message grows, fragment by
    // fragment, so no more than the limit is ever buffered; the session
    // turns the error into close code 1009.
    let limit = sig.limits().max_message_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| crate::session::run(socket, sig, q.token))
}

/// Whether a browser page from `origin` may open the WebSocket: any, when
/// no origins are configured.
pub fn origin_allowed(allowed: &[String], origin: &[u8]) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|a| {
            a.trim_end_matches('/')
                .as_bytes()
                .eq_ignore_ascii_case(origin)
        })
}

/// Whether a request may read the statistics: always when no stats token
/// is configured, else with `Authorization: Bearer <token>`.
pub fn stats_allowed(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(token) = token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer to a statistics request without the right token.
pub fn stats_denied() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied,
        "statistics need `Authorization: Bearer <stats_token>`",
    )
    .into_response()
}

/// An HTTP API error as JSON: `{"code": ..., "message": ...}`.
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    room: String,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// Lifetime in seconds (default one hour).
    #[serde(default)]
    ttl: Option<u64>,
    #[serde(default)]
    grants: Option<Grants>,
    #[serde(default)]
    mode: Option<RoomMode>,
}

async fn mint_token(State(sig): State<Signaling>, body: Bytes) -> Result<Response, ApiError> {
    if !sig.auth().is_development() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::PermissionDenied,
            "tokens are minted here only in development mode; use `sfu token create`",
        ));
    }
    let req: TokenRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidMessage,
            format!("invalid token request: {e}"),
        )
    })?;
    if RoomName::parse(&req.room).is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRoom,
            "invalid room name",
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let ttl = req.ttl.unwrap_or(3600).clamp(1, 7 * 24 * 3600);
    let identity = req
        .identity
        .unwrap_or_else(|| crate::ClientId::random().to_string());
    let claims = Claims {
        sub: identity.clone(),
        room: Some(req.room.clone()),
        name: req.name,
        grants: req.grants.unwrap_or_default(),
        mode: req.mode,
        exp: now + ttl,
        iat: now,
    };
    let token = sig.auth().sign(&claims, None).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "could not sign",
        )
    })?;
    Ok(Json(
        json!({"token": token, "identity": identity, "room": req.room, "expiresAt": claims.exp}),
    )
    .into_response())
}

async fn stats(State(sig): State<Signaling>, headers: HeaderMap) -> Response {
    if !stats_allowed(sig.access().stats_token.as_deref(), &headers) {
        return stats_denied();
    }
    let hub = sig.stats().await;
    Json(json!({"signaling": hub, "media": sig.media_stats()})).into_response()
}
