//! `GET /v1/mappers`: each provider's mapper — the version serving (content
//! hash, size, load time, compiled or from the artifact cache, canary
//! fixture results), the last release refused and why, or since when its
//! file is missing. Read scope: it carries file paths and hashes, no secret.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Reader;
use super::error::ApiError;

pub async fn list(_: Reader, State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(match &state.mappers {
        Some(registry) => registry.to_json(),
        None => json!({"mappers": []}),
    }))
}
