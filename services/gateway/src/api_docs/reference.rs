//! The API reference in Markdown: an index (`README.md`) and one page per package with its
//! services and methods (who may call each, its JSON path), messages (each field's JSON name
//! and type) and enums, from the proto comments.

use std::{collections::BTreeMap, fmt::Write};

use prost_reflect::{Cardinality, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

use super::{Contracts, summary, who};

/// The reference's files: (file name, Markdown).
pub fn files(contracts: &Contracts) -> Vec<(String, String)> {
    let mut packages: BTreeMap<String, Vec<_>> = contracts
        .pool
        .files()
        .map(|f| f.package_name().to_string())
        .filter(|p| p.starts_with("crm."))
        .map(|p| (p, Vec::new()))
        .collect();
    for service in contracts.services() {
        packages
            .entry(service.package_name().to_string())
            .or_default()
            .push(service);
    }
    let mut index = String::from(
        "# API reference\n\n\
         Generated from the contracts in `proto/` by `crm api-docs` (do not edit; `make lint` \
         checks it is in step). Every method is served at the gateway over gRPC, gRPC-Web and, \
         unary ones, as JSON over HTTP (`POST /<package>.<Service>/<Method>`, see \
         [the partner guide](../partners.md) and [`openapi.json`](../openapi.json)). \
         \"Who may call it\" is the default policy (`[auth.policy]`).\n\n\
         | Package | Service | What it does |\n|---|---|---|\n",
    );
    let mut shared = String::from("\nPackages of shared messages: ");
    let mut files = Vec::new();
    for (package, services) in &packages {
        let mut page = format!("# {package}\n\n[All packages](README.md)\n\n");
        if services.is_empty() {
            let _ = write!(shared, "[{package}]({package}.md) ");
        }
        for service in services {
            let comment = contracts.comment(&service.parent_file(), service.path());
            let _ = writeln!(
                index,
                "| [{package}]({package}.md) | [{}]({package}.md#{}) | {} |",
                service.name(),
                anchor(service.name()),
                cell(&summary(comment))
            );
            let _ = write!(
                page,
                "## {}\n\n{comment}\n\n| Method | Request | Response | Who may call it |\n\
                 |---|---|---|---|\n",
                service.name()
            );
            for method in service.methods() {
                let full = format!("{}/{}", service.full_name(), method.name());
                let _ = writeln!(
                    page,
                    "| [{}](#{}) | {} | {} | {} |",
                    method.name(),
                    anchor(&format!("{}.{}", service.name(), method.name())),
                    type_link(package, method.input().full_name()),
                    type_link(package, method.output().full_name()),
                    cell(&who(contracts, &full))
                );
            }
            page.push('\n');
            for method in service.methods() {
                let full = format!("{}/{}", service.full_name(), method.name());
                let stream = |on: bool| if on { "stream " } else { "" };
                let _ = write!(
                    page,
                    "### {}.{}\n\n{}\n\n```proto\nrpc {}({}{}) returns ({}{});\n```\n\n",
                    service.name(),
                    method.name(),
                    contracts.comment(&method.parent_file(), method.path()),
                    method.name(),
                    stream(method.is_client_streaming()),
                    method.input().full_name(),
                    stream(method.is_server_streaming()),
                    method.output().full_name(),
                );
                if method.is_client_streaming() || method.is_server_streaming() {
                    page.push_str(
                        "Streaming: over gRPC (and gRPC-Web for server streams), not as JSON.\n\n",
                    );
                } else {
                    let _ = write!(page, "JSON over HTTP: `POST /{full}`\n\n");
                }
                let _ = write!(page, "Who may call it: {}.\n\n", who(contracts, &full));
            }
        }
        let messages: Vec<MessageDescriptor> = contracts
            .pool
            .all_messages()
            .filter(|m| m.package_name() == package && !m.is_map_entry())
            .collect();
        if !messages.is_empty() {
            page.push_str("## Messages\n\n");
        }
        for message in &messages {
            let _ = write!(
                page,
                "### {}\n\n{}\n\n",
                message
                    .full_name()
                    .trim_start_matches(&format!("{package}.")),
                contracts.comment(&message.parent_file(), message.path())
            );
            if message.fields().len() == 0 {
                page.push_str("No fields.\n\n");
                continue;
            }
            page.push_str("| Field | JSON | Type | Description |\n|---|---|---|---|\n");
            for field in message.fields() {
                let _ = writeln!(
                    page,
                    "| `{}` | `{}` | {} | {} |",
                    field.name(),
                    field.json_name(),
                    field_type(package, &field),
                    cell(contracts.comment(&field.parent_file(), field.path()))
                );
            }
            page.push('\n');
        }
        let enums: Vec<EnumDescriptor> = contracts
            .pool
            .all_enums()
            .filter(|e| e.package_name() == package)
            .collect();
        if !enums.is_empty() {
            page.push_str("## Enums\n\n");
        }
        for e in &enums {
            let _ = write!(
                page,
                "### {}\n\n{}\n\n| Value | Number | Description |\n|---|---:|---|\n",
                e.full_name().trim_start_matches(&format!("{package}.")),
                contracts.comment(&e.parent_file(), e.path())
            );
            for value in e.values() {
                let _ = writeln!(
                    page,
                    "| `{}` | {} | {} |",
                    value.name(),
                    value.number(),
                    cell(contracts.comment(&value.parent_file(), value.path()))
                );
            }
            page.push('\n');
        }
        files.push((format!("{package}.md"), page.trim_end().to_string() + "\n"));
    }
    index.push_str(shared.trim_end());
    index.push('\n');
    files.insert(0, ("README.md".to_string(), index));
    files
}

/// A field's type: `string`, `repeated Contact`, `map<string, string>`, linked when it is a
/// message or enum of the platform.
fn field_type(package: &str, field: &FieldDescriptor) -> String {
    if let Kind::Message(entry) = field.kind()
        && entry.is_map_entry()
    {
        return format!(
            "map<{}, {}>",
            kind_name(package, &entry.map_entry_key_field().kind()),
            kind_name(package, &entry.map_entry_value_field().kind())
        );
    }
    let name = kind_name(package, &field.kind());
    match field.cardinality() {
        Cardinality::Repeated => format!("repeated {name}"),
        _ if field.supports_presence() && field.containing_oneof().is_some() => {
            format!("{name} (optional)")
        }
        _ => name,
    }
}

fn kind_name(package: &str, kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => type_link(package, m.full_name()),
        Kind::Enum(e) => type_link(package, e.full_name()),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A link to a type's section: on this page, another package's page, or none (google.*).
fn type_link(package: &str, full_name: &str) -> String {
    if !full_name.starts_with("crm.") {
        return format!("`{full_name}`");
    }
    let (own, name) = match full_name.strip_prefix(&format!("{package}.")) {
        Some(name) => (String::new(), name),
        None => {
            let (pkg, name) = split_package(full_name);
            (format!("{pkg}.md"), name)
        }
    };
    format!("[{name}]({own}#{})", anchor(name))
}

/// `crm.common.v1.Money` → (`crm.common.v1`, `Money`): the package is the lowercase parts.
fn split_package(full_name: &str) -> (&str, &str) {
    let mut end = 0;
    for (i, part) in full_name.split('.').enumerate() {
        if part.chars().next().is_some_and(char::is_uppercase) {
            break;
        }
        end += part.len() + usize::from(i > 0);
    }
    (
        &full_name[..end],
        &full_name[(end + 1).min(full_name.len())..],
    )
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Text for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_links() {
        assert_eq!(
            split_package("crm.common.v1.Money"),
            ("crm.common.v1", "Money")
        );
        assert_eq!(
            type_link("crm.tickets.v1", "crm.common.v1.Money"),
            "[Money](crm.common.v1.md#money)"
        );
        assert_eq!(
            type_link("crm.tickets.v1", "crm.tickets.v1.Ticket.Step"),
            "[Ticket.Step](#ticketstep)"
        );
        assert_eq!(
            anchor("CustomerService.GetCustomer"),
            "customerservicegetcustomer"
        );
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
