//! `GET /v1/mappers`: each provider's mapper — the version serving (content
//! hash, size, load time, compiled or from the artifact cache, canary
//! fixture results), the last release refused and why, or since when its
//! file is missing. Read scope: it carries file paths and hashes, no secret.

use axum::Json;
use axum::extract::State;

use super::ApiState;
use super::auth::Reader;
use super::error::{ApiError, ErrorBody};
use crate::reload::MapperListing;

#[utoipa::path(
    get,
    tag = "mappers",
    path = "/v1/mappers",
    operation_id = "listMappers",
    summary = "Each provider's mapper: the version serving, its canary results, the last refused release",
    responses(
        (status = 200, description = "one entry per provider with a mapper source", body = MapperListing),
        (status = 401, description = "missing or invalid bearer token", body = ErrorBody),
    )
)]
pub async fn list(
    _: Reader,
    State(state): State<ApiState>,
) -> Result<Json<MapperListing>, ApiError> {
    Ok(Json(match &state.mappers {
        Some(registry) => registry.listing(),
        None => MapperListing {
            mappers: Vec::new(),
        },
    }))
}
