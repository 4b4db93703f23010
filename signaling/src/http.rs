//! HTTP routes of signaling: the WebSocket, the token endpoint and stats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State, WebSocketUpgrade};
use axum::http::StatusCode;
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
    Router::new()
        .route("/ws", get(ws))
        .route("/api/token", post(mint_token))
        .route("/api/stats", get(stats))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(sig)
}

#[derive(Deserialize)]
struct WsQuery {
    token: Option<String>,
}

async fn ws(
    State(sig): State<Signaling>,
    Query(q): Query<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Frames between the configured limit and this hard cap are read and then
    // refused with close code 1009; larger ones are cut off by the library.
    let hard_cap = sig
        .limits()
        .max_message_bytes
        .saturating_mul(4)
        .max(1 << 20);
    upgrade
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| crate::session::run(socket, sig, q.token))
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

async fn stats(State(sig): State<Signaling>) -> Response {
    let hub = sig.stats().await;
    Json(json!({"signaling": hub, "media": sig.media_stats()})).into_response()
}
