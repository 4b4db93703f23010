//! `GET /api/cluster`: the nodes and rooms of the cluster, from any node.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::http::{stats_allowed, stats_denied, ApiError};
use crate::server::Signaling;
use crate::ErrorCode;

/// Routes: `GET /api/cluster`.
pub fn router(sig: Signaling) -> Router {
    Router::new()
        .route("/api/cluster", get(view))
        .with_state(sig)
}

async fn view(State(sig): State<Signaling>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !stats_allowed(sig.access().stats_token.as_deref(), &headers) {
        return Ok(stats_denied());
    }
    let Some(cluster) = sig.cluster() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidMessage,
            "this server runs alone: no [cluster] redis is configured",
        ));
    };
    match cluster.view().await {
        Some(v) => Ok(Json(v).into_response()),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal,
            "the cluster's state cannot be read",
        )),
    }
}
