//! Google API reads where "gone" is an answer, not a failure (an expired
//! cursor: Gmail 404, Calendar 410; a message deleted since), and the
//! cursors' writes to the mapper state.

use mapper_kit::{ApiRequest, MapError, api_error_text, internal, provider_api, state_set};
use serde_json::Value;

/// GETs `path`: the JSON answer, `None` for 404 or 410, an internal error
/// naming the call otherwise (the host retries when the API was down).
pub fn get_unless_gone(path: &str) -> Result<Option<Value>, MapError> {
    let response = provider_api(&ApiRequest {
        method: "GET".into(),
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    })
    .map_err(|e| internal(format!("GET {path} failed: {}", api_error_text(&e))))?;
    match response.status {
        404 | 410 => Ok(None),
        200..=299 => serde_json::from_slice(&response.body)
            .map(Some)
            .map_err(|e| internal(format!("GET {path}: answer is not JSON: {e}"))),
        status => Err(internal(format!("GET {path} answered status {status}"))),
    }
}

/// Compare-and-sets `key` from `expected` (what this call read) to
/// `value` (`None` deletes). Only this call writes its view of the state,
/// so a refusal is a bug: the host checks again at commit.
pub fn set_state(key: &str, value: Option<&str>, expected: Option<&str>) -> Result<(), MapError> {
    if state_set(key, value, expected) {
        Ok(())
    } else {
        Err(internal(format!(
            "mapper state `{key}`: the write was refused"
        )))
    }
}
