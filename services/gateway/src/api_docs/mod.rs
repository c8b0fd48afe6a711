//! The API's documents, generated from the contracts' descriptors and their comments: the
//! OpenAPI 3 document of JSON over HTTP (`openapi`, served at `GET /openapi.json` and written
//! to `docs/openapi.json`) and the API reference (`reference`, Markdown in `docs/api/`), both
//! written by `crm api-docs` and kept in step by `make lint` (`crm api-docs --check`).
//!
//! What is documented: every `crm.*` service the gateway answers or forwards, with who may
//! call each method under the configured policy.

pub mod openapi;
pub mod reference;

use std::collections::HashMap;

use crm_kit::auth::{Access, Policy};
use prost_reflect::{DescriptorPool, FileDescriptor, ServiceDescriptor};

/// The OpenAPI document under `settings`' policy.
pub fn openapi_for(settings: &crm_kit::Settings) -> anyhow::Result<serde_json::Value> {
    let contracts = Contracts::load(&Policy::new(&settings.auth)?)?;
    Ok(openapi::document(&contracts))
}

/// The reference's files (name, Markdown) under `settings`' policy.
pub fn reference_for(settings: &crm_kit::Settings) -> anyhow::Result<Vec<(String, String)>> {
    let contracts = Contracts::load(&Policy::new(&settings.auth)?)?;
    Ok(reference::files(&contracts))
}

/// Every generated document as (path under `docs/`, content): `openapi.json` and `api/*.md`.
pub fn generate(settings: &crm_kit::Settings) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = vec![(
        "openapi.json".to_string(),
        format!("{:#}\n", openapi_for(settings)?),
    )];
    for (name, text) in reference_for(settings)? {
        files.push((format!("api/{name}"), text));
    }
    Ok(files)
}

/// The descriptors, their comments and the policy: what both documents are made of.
pub struct Contracts {
    pub(crate) pool: DescriptorPool,
    comments: HashMap<(String, Vec<i32>), String>,
    policy: Policy,
}

/// Who may call a method, in words.
pub(crate) fn who(contracts: &Contracts, method: &str) -> String {
    match contracts.policy.access(method) {
        Access::Public => "anyone, without a token".into(),
        Access::Authenticated => "any signed-in caller".into(),
        Access::Roles => {
            let roles = contracts.policy.roles_allowed(method);
            if roles.is_empty() {
                "no role under the configured policy".into()
            } else {
                roles.join(", ")
            }
        }
    }
}

impl Contracts {
    /// The platform's descriptors (with their source comments) under `policy`.
    pub fn load(policy: &Policy) -> anyhow::Result<Self> {
        let pool = crm_kit::connect::descriptors()?;
        let mut comments = HashMap::new();
        for file in pool.files() {
            let Some(info) = &file.file_descriptor_proto().source_code_info else {
                continue;
            };
            for location in &info.location {
                if let Some(text) = &location.leading_comments {
                    comments.insert(
                        (file.name().to_string(), location.path.clone()),
                        clean(text),
                    );
                }
            }
        }
        Ok(Self {
            pool,
            comments,
            policy: policy.clone(),
        })
    }

    /// The documented services: every `crm.*` one, by full name.
    pub fn services(&self) -> Vec<ServiceDescriptor> {
        let mut services: Vec<_> = self
            .pool
            .services()
            .filter(|s| s.full_name().starts_with("crm."))
            .collect();
        services.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        services
    }

    /// The leading comment of the element at `path` in `file`, or "".
    pub fn comment(&self, file: &FileDescriptor, path: &[i32]) -> &str {
        self.comments
            .get(&(file.name().to_string(), path.to_vec()))
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A comment without its leading spaces and trailing blank lines.
fn clean(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// A comment's first sentence or line, for summaries.
pub(crate) fn summary(comment: &str) -> String {
    let line = comment
        .split("\n\n")
        .next()
        .unwrap_or("")
        .replace('\n', " ");
    match line.find(". ") {
        Some(i) => line[..=i].to_string(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_read_from_the_descriptors() {
        let contracts =
            Contracts::load(&Policy::new(&crm_kit::Settings::load(None).unwrap().auth).unwrap())
                .unwrap();
        let service = contracts
            .pool
            .get_service_by_name("crm.customers.v1.CustomerService")
            .unwrap();
        assert!(
            !contracts
                .comment(&service.parent_file(), service.path())
                .is_empty()
        );
        assert!(contracts.services().len() >= 8);
        assert_eq!(summary("One. Two.\nThree"), "One.");
        assert_eq!(clean(" a\n b  \n\n"), "a\nb");
    }
}
