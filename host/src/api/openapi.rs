//! The OpenAPI 3.1 description, generated from the code: each handler's
//! `#[utoipa::path]` attribute (route, parameters, responses) and the
//! `ToSchema` request and response types it names. [`ApiDoc`] lists every
//! described handler; [`document`] adds what only the configuration knows
//! (the workflow's statuses) and is what `GET /v1/openapi.json` serves.
//!
//! Adding a route: annotate its handler with `#[utoipa::path(...)]` and
//! list the handler in `ApiDoc`'s `paths(...)`. The integration test
//! `every_served_route_is_described` lists every route the host's router
//! serves, and every method on it, and fails on one the document lacks.
//!
//! The validation rules a request body states (patterns, lengths, enums)
//! are the ones `tickets::validate` enforces: `scripts/api-check` holds the
//! server to them with schemathesis, so they must stay exactly as strict.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi};

use super::{conflicts, deliveries, error, mappers, outbox, people, providers, sweeper, tickets};

/// Every described route, and the schemas they use.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice ticket API",
        description = "The host's tickets: find, get, create, update, notes and history; deliveries and their replay; the mappers serving; webhooks. Every route but this document, the health checks, `/metrics` and the webhooks needs `Authorization: Bearer <token>`; read tokens may not write (403)."
    ),
    paths(
        tickets::find,
        tickets::create,
        tickets::find_first,
        tickets::get,
        tickets::update,
        tickets::add_note,
        tickets::history,
        deliveries::list,
        deliveries::replay_many,
        deliveries::show,
        deliveries::replay_one,
        mappers::list,
        outbox::list,
        outbox::retry_many,
        outbox::show,
        outbox::retry_one,
        conflicts::list,
        conflicts::show,
        conflicts::resolve,
        people::list,
        people::show,
        people::put,
        people::delete,
        people::provider_state,
        sweeper::show,
        providers::list,
        super::openapi_json,
        super::healthz,
        super::readyz,
        super::metrics,
        crate::ingress::route::receive,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Bearer, &Exceptions),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The `bearer` scheme the document's `security` names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What the attributes cannot say.
struct Exceptions;

impl Modify for Exceptions {
    fn modify(&self, doc: &mut Document) {
        use utoipa::openapi::Required;
        let paths = &mut doc.paths.paths;
        // `POST /v1/deliveries/replay` shares `GET /v1/deliveries`'s query
        // type, but replays nothing without a `status` (422 naming it).
        if let Some(op) = paths
            .get_mut("/v1/deliveries/replay")
            .and_then(|item| item.post.as_mut())
        {
            for p in op.parameters.iter_mut().flatten() {
                if p.name == "status" {
                    p.required = Required::True;
                }
            }
        }
        // Bodies that may be absent: a webhook's (Google's channel
        // notifications have none; verification judges it), and an outbox
        // retry's filter (none retries every provider's rows).
        for path in ["/hooks/{provider}", "/v1/outbox/retry"] {
            if let Some(body) = paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.request_body.as_mut())
            {
                body.required = Some(Required::False);
            }
        }
    }
}

/// The description as served: the generated document with the statuses an
/// update may set, which are the configured workflow's (or null:
/// unchanged).
pub fn document(workflow: &crate::tickets::Workflow) -> serde_json::Value {
    // `PATCH /v1/tickets/{guid}`'s body.
    const STATUS: &str = "/components/schemas/UpdateBody/properties/status";
    // Serialising a document of strings, numbers and maps cannot fail; a
    // null document would fail the integration tests, not a request.
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    if let Some(status) = doc.pointer_mut(STATUS) {
        let mut statuses: Vec<serde_json::Value> = workflow
            .statuses()
            .iter()
            .map(|s| s.as_str().into())
            .collect();
        statuses.push(serde_json::Value::Null);
        status["enum"] = statuses.into();
    }
    // `security: [{}]` (what `security(())` renders) already means "no
    // credentials"; `[]` says it plainly, as the hand-written document did.
    if let Some(paths) = doc["paths"].as_object_mut() {
        for operation in paths.values_mut().filter_map(|p| p.as_object_mut()) {
            for op in operation.values_mut() {
                if op["security"] == serde_json::json!([{}]) {
                    op["security"] = serde_json::json!([]);
                }
            }
        }
    }
    doc
}

// What a text field may hold. `tickets::validate` refuses control
// characters in one-line fields, NUL everywhere, and a value with no
// visible character where one is required.
macro_rules! control {
    () => {
        r"\u0000-\u001f\u007f-\u009f"
    };
}
macro_rules! space {
    () => {
        r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// One line with a visible character.
pub const ONE_LINE: &str = concat!(
    "^[^",
    control!(),
    "]*[^",
    control!(),
    space!(),
    "][^",
    control!(),
    "]*$"
);
/// Free text: anything but NUL.
pub const TEXT: &str = r"^[^\u0000]*$";
/// Free text with a visible character.
pub const NOTE: &str = concat!(r"^[^\u0000]*[^", control!(), space!(), r"][^\u0000]*$");
/// `local@domain.tld`, one line, no spaces.
pub const EMAIL: &str = concat!(
    "^[^@",
    control!(),
    space!(),
    "]+@[^@.",
    control!(),
    space!(),
    r"]+(\.[^@.",
    control!(),
    space!(),
    "]+)+$"
);

/// A string field (or string-or-null when `nullable`).
pub fn string(nullable: bool) -> ObjectBuilder {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new().schema_type(ty)
}

/// A string field matching `pattern`, at most `max` characters.
pub fn text(nullable: bool, pattern: &str, max: Option<usize>) -> ObjectBuilder {
    string(nullable).pattern(Some(pattern)).max_length(max)
}

/// A string that is one of `values` (or null when `nullable`).
pub fn one_of(nullable: bool, values: &[&str]) -> ObjectBuilder {
    let mut all: Vec<serde_json::Value> = values.iter().map(|v| (*v).into()).collect();
    if nullable {
        all.push(serde_json::Value::Null);
    }
    string(nullable).enum_values(Some(all))
}

/// Labels: at most 32, each one line of at most 64 characters.
pub fn labels(nullable: bool) -> RefOr<Schema> {
    let ty = if nullable {
        SchemaType::from_iter([Type::Array, Type::Null])
    } else {
        SchemaType::Type(Type::Array)
    };
    ArrayBuilder::new()
        .schema_type(ty)
        .max_items(Some(32))
        .items(text(false, ONE_LINE, Some(64)))
        .into()
}

/// Custom fields: at most 64, snake_case names of at most 64 characters,
/// free-text values (an empty value clears the field).
pub fn custom_fields(nullable: bool) -> ObjectBuilder {
    let ty = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::Type(Type::Object)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .max_properties(Some(crate::tickets::validate::FIELDS_MAX))
        .property_names(Some(text(false, FIELD_NAME, None)))
        .additional_properties(Some(text(
            false,
            TEXT,
            Some(crate::tickets::validate::TEXT_MAX),
        )))
        .description(Some(
            "custom fields by name (snake_case ASCII, at most 64 characters); a value is free text, an empty one clears the field",
        ))
}

/// A custom field's name: snake_case ASCII starting with a letter.
pub const FIELD_NAME: &str = "^[a-z][a-z0-9_]{0,63}$";

/// A field schema built above, with its description.
pub fn field(b: ObjectBuilder, description: Option<&str>) -> ObjectBuilder {
    b.description(description)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_served_description_lists_the_configured_workflow() {
        let workflow =
            crate::tickets::Workflow::new(vec!["OPEN".into(), "DONE".into()]).expect("not empty");
        let doc = super::document(&workflow);
        let body = &doc["paths"]["/v1/tickets/{guid}"]["patch"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"];
        assert_eq!(body, "#/components/schemas/UpdateBody");
        let status = &doc["components"]["schemas"]["UpdateBody"]["properties"]["status"];
        assert_eq!(status["enum"], serde_json::json!(["OPEN", "DONE", null]));
        assert_eq!(status["type"], serde_json::json!(["string", "null"]));
    }

    #[test]
    fn patterns_are_the_ones_validation_enforces() {
        // The same character classes, spelled as the hand-written
        // description spelled them.
        assert_eq!(
            super::ONE_LINE,
            r"^[^\u0000-\u001f\u007f-\u009f]*[^\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u001f\u007f-\u009f]*$"
        );
        assert_eq!(
            super::EMAIL,
            r"^[^@\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^@.\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+$"
        );
        assert_eq!(
            super::NOTE,
            r"^[^\u0000]*[^\u0000-\u001f\u007f-\u009f\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
        );
    }
}
