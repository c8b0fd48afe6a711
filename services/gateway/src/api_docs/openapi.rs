//! The OpenAPI 3.0 document of JSON over HTTP: every method a `POST` of its request message
//! to `/<package>.<Service>/<Method>`, answered with its response message or the Connect error
//! body; schemas in the proto3 JSON mapping (lowerCamelCase names, 64-bit integers as strings,
//! enums by name, timestamps as RFC 3339), descriptions from the proto comments.

use std::collections::BTreeMap;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};
use serde_json::{Value, json};

use super::{Contracts, summary, who};

/// The schema name of the Connect error body.
const ERROR: &str = "connect.Error";

/// The whole document.
pub fn document(contracts: &Contracts) -> Value {
    let mut paths = serde_json::Map::new();
    let mut tags = Vec::new();
    let mut wanted = Vec::new();
    for service in contracts.services() {
        let file = service.parent_file();
        tags.push(json!({
            "name": service.full_name(),
            "description": contracts.comment(&file, service.path()),
        }));
        for method in service.methods() {
            wanted.push(method.input());
            wanted.push(method.output());
            paths.insert(
                format!("/{}/{}", service.full_name(), method.name()),
                json!({ "post": operation(contracts, &method) }),
            );
        }
    }
    let mut schemas = BTreeMap::new();
    for message in wanted {
        collect(contracts, &message, &mut schemas);
    }
    schemas.insert(ERROR.to_string(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "CRM and after-sales service platform",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON over HTTP at the gateway, in the Connect protocol's unary form: \
                POST the request message as JSON (`Content-Type: application/json`) to \
                `/<package>.<Service>/<Method>` with `Authorization: Bearer <token>`; the answer \
                is the response message as JSON, or on failure the Connect error body with an \
                HTTP status that matches its code. A token comes from \
                `crm.gateway.v1.AuthService/Login` (people) or `ExchangeApiKey` (partner \
                systems). The same methods are served over gRPC and gRPC-Web; streaming methods \
                only there. Generated from the contracts in proto/ by `crm api-docs`.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from AuthService/Login or ExchangeApiKey.",
                }
            },
            "schemas": schemas,
        },
    })
}

fn operation(contracts: &Contracts, method: &MethodDescriptor) -> Value {
    let service = method.parent_service();
    let full = format!("{}/{}", service.full_name(), method.name());
    let comment = contracts.comment(&method.parent_file(), method.path());
    let streaming = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => None,
        (true, false) => Some("client streaming"),
        (false, true) => Some("server streaming"),
        (true, true) => Some("bidirectional streaming"),
    };
    let mut description = format!("{comment}\n\nWho may call it: {}.", who(contracts, &full));
    if let Some(kind) = streaming {
        description.push_str(&format!(
            "\n\nA {kind} method: served over gRPC{}, not as JSON over HTTP (which answers \
             `unimplemented`).",
            if method.is_client_streaming() {
                ""
            } else {
                " and gRPC-Web"
            }
        ));
    }
    let mut operation = json!({
        "tags": [service.full_name()],
        "operationId": format!("{}.{}", service.full_name(), method.name()),
        "summary": summary(comment),
        "description": description,
        "parameters": [{
            "name": "Connect-Timeout-Ms",
            "in": "header",
            "required": false,
            "description": "The call's deadline in milliseconds; past it the call fails with \
                deadline_exceeded.",
            "schema": { "type": "integer", "minimum": 1 },
        }],
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": reference(&method.input()) } },
        },
        "responses": {
            "200": {
                "description": format!("The {}.", method.output().name()),
                "headers": {
                    "x-trace-id": {
                        "description": "The call's trace id, to quote to support.",
                        "schema": { "type": "string" },
                    }
                },
                "content": { "application/json": { "schema": reference(&method.output()) } },
            },
            "default": {
                "description": "The call failed: the Connect error body (the HTTP status \
                    follows its code: invalid_argument 400, unauthenticated 401, \
                    permission_denied 403, not_found 404, aborted and already_exists 409, \
                    resource_exhausted 429, unavailable 503, …).",
                "content": { "application/json": { "schema": reference_to(ERROR) } },
            },
        },
    });
    if streaming.is_some() {
        operation["x-streaming"] = json!(streaming);
    }
    if matches!(
        contracts.policy.access(&full),
        crm_kit::auth::Access::Public
    ) {
        operation["security"] = json!([]);
    }
    operation
}

fn reference(message: &MessageDescriptor) -> Value {
    reference_to(message.full_name())
}

fn reference_to(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Adds `message`'s schema and those of every message and enum it uses.
fn collect(contracts: &Contracts, message: &MessageDescriptor, out: &mut BTreeMap<String, Value>) {
    if out.contains_key(message.full_name()) || well_known(message.full_name()).is_some() {
        return;
    }
    let file = message.parent_file();
    let mut properties = serde_json::Map::new();
    // placeholder first, so a recursive message ends the walk
    out.insert(message.full_name().to_string(), Value::Null);
    for field in message.fields() {
        let mut schema = field_schema(&field);
        let mut description = contracts.comment(&file, field.path()).to_string();
        if let Some(oneof) = field.containing_oneof()
            && !oneof.is_synthetic()
        {
            description.push_str(&format!(
                "{}One of `{}`: at most one of its fields is set.",
                if description.is_empty() { "" } else { "\n\n" },
                oneof.name()
            ));
        }
        if !description.is_empty() {
            schema = describe(schema, &description);
        }
        properties.insert(field.json_name().to_string(), schema);
        for kind in field_kinds(&field) {
            match kind {
                Kind::Message(m) => collect(contracts, &m, out),
                Kind::Enum(e) => collect_enum(contracts, &e, out),
                _ => {}
            }
        }
    }
    out.insert(
        message.full_name().to_string(),
        json!({
            "type": "object",
            "description": contracts.comment(&file, message.path()),
            "properties": properties,
            "additionalProperties": false,
        }),
    );
}

fn collect_enum(contracts: &Contracts, e: &EnumDescriptor, out: &mut BTreeMap<String, Value>) {
    if out.contains_key(e.full_name()) || e.full_name() == "google.protobuf.NullValue" {
        return;
    }
    let file = e.parent_file();
    let mut description = contracts.comment(&file, e.path()).to_string();
    for value in e.values() {
        let comment = contracts.comment(&file, value.path());
        description.push_str(&format!(
            "\n- `{}`{}{}",
            value.name(),
            if comment.is_empty() { "" } else { ": " },
            comment.replace('\n', " ")
        ));
    }
    out.insert(
        e.full_name().to_string(),
        json!({
            "type": "string",
            "description": description.trim(),
            "enum": e.values().map(|v| v.name().to_string()).collect::<Vec<_>>(),
        }),
    );
}

/// The message and enum types a field holds (a map's key and value too).
fn field_kinds(field: &FieldDescriptor) -> Vec<Kind> {
    match field.kind() {
        Kind::Message(m) if m.is_map_entry() => vec![
            m.map_entry_key_field().kind(),
            m.map_entry_value_field().kind(),
        ],
        kind => vec![kind],
    }
}

fn field_schema(field: &FieldDescriptor) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("a map field holds its entry message")
        };
        return json!({
            "type": "object",
            "additionalProperties": kind_schema(&entry.map_entry_value_field().kind()),
        });
    }
    let item = kind_schema(&field.kind());
    if field.is_list() {
        json!({ "type": "array", "items": item })
    } else {
        item
    }
}

/// A single value's schema in the proto3 JSON mapping.
fn kind_schema(kind: &Kind) -> Value {
    match kind {
        Kind::Double => json!({ "type": "number", "format": "double" }),
        Kind::Float => json!({ "type": "number", "format": "float" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295u64 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
            "type": "string", "format": "int64", "pattern": "^-?[0-9]+$",
            "description": "A 64-bit integer, as a string (numbers are accepted too).",
        }),
        Kind::Uint64 | Kind::Fixed64 => json!({
            "type": "string", "format": "uint64", "pattern": "^[0-9]+$",
            "description": "A 64-bit integer, as a string (numbers are accepted too).",
        }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "format": "byte" }),
        Kind::Message(m) => {
            well_known(m.full_name()).unwrap_or_else(|| reference_to(m.full_name()))
        }
        Kind::Enum(e) => reference_to(e.full_name()),
    }
}

/// The JSON form of the well-known types the proto3 mapping writes specially.
fn well_known(name: &str) -> Option<Value> {
    let wrapped = |t: &str, f: Option<&str>| {
        let mut v = json!({ "type": t, "nullable": true });
        if let Some(f) = f {
            v["format"] = json!(f);
        }
        v
    };
    Some(match name {
        "google.protobuf.Timestamp" => json!({
            "type": "string", "format": "date-time",
            "description": "An RFC 3339 time in UTC, e.g. 2026-12-03T08:30:00Z.",
        }),
        "google.protobuf.Duration" => json!({
            "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$",
            "description": "Seconds with an `s` suffix, e.g. 1.5s.",
        }),
        "google.protobuf.Empty" => json!({ "type": "object", "additionalProperties": false }),
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array", "items": {} }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths in lowerCamelCase, comma-separated, e.g. displayName,region.",
        }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.StringValue" => wrapped("string", None),
        "google.protobuf.BytesValue" => wrapped("string", Some("byte")),
        "google.protobuf.BoolValue" => wrapped("boolean", None),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            wrapped("integer", Some("int32"))
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            wrapped("string", Some("int64"))
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            wrapped("number", Some("double"))
        }
        _ => return None,
    })
}

/// A schema with a description: beside a `$ref`, through `allOf` (OpenAPI 3.0 ignores a
/// `$ref`'s siblings).
fn describe(schema: Value, description: &str) -> Value {
    if schema.get("$ref").is_some() {
        json!({ "allOf": [schema], "description": description })
    } else {
        let mut schema = schema;
        let own = schema
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!("{description}\n\n{d}"))
            .unwrap_or_else(|| description.to_string());
        schema["description"] = json!(own);
        schema
    }
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "The Connect error body.",
        "required": ["code"],
        "properties": {
            "code": {
                "type": "string",
                "description": "The status code's name.",
                "enum": [
                    "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
                    "already_exists", "permission_denied", "resource_exhausted",
                    "failed_precondition", "aborted", "out_of_range", "unimplemented",
                    "internal", "unavailable", "data_loss", "unauthenticated",
                ],
            },
            "message": { "type": "string", "description": "What went wrong, for a person." },
            "details": {
                "type": "array",
                "description": "google.rpc details: BadRequest (the offending fields), \
                    ErrorInfo (a machine-readable reason), …",
                "items": {
                    "type": "object",
                    "required": ["type", "value"],
                    "properties": {
                        "type": {
                            "type": "string",
                            "description": "The detail's message type, e.g. google.rpc.BadRequest.",
                        },
                        "value": {
                            "type": "string",
                            "format": "byte",
                            "description": "The detail as binary protobuf, base64.",
                        },
                        "debug": {
                            "type": "object",
                            "additionalProperties": true,
                            "description": "The detail as JSON, e.g. \
                                {\"fieldViolations\": [{\"field\": \"customer.displayName\", \
                                \"description\": \"is required\"}]}.",
                        },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_an_operation_and_every_reference_resolves() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let document = crate::api_docs::openapi_for(&settings).unwrap();
        let contracts =
            Contracts::load(&crm_kit::auth::Policy::new(&settings.auth).unwrap()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut methods = 0;
        for service in contracts.services() {
            for method in service.methods() {
                methods += 1;
                let path = format!("/{}/{}", service.full_name(), method.name());
                assert!(paths[&path]["post"].is_object(), "{path}");
            }
        }
        assert_eq!(paths.len(), methods);
        let text = document.to_string();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but missing"
            );
        }
        let login = &paths["/crm.gateway.v1.AuthService/Login"]["post"];
        assert_eq!(login["security"], json!([]));
        let get = &paths["/crm.customers.v1.CustomerService/GetCustomer"]["post"];
        assert!(get.get("security").is_none());
        assert!(
            get["description"]
                .as_str()
                .unwrap()
                .contains("Who may call it:"),
            "{get}"
        );
    }
}
