//! The template rules (N-1): names, the variables a template may use by its kind, the checked
//! SaveTemplate, and rendering.

use std::collections::BTreeMap;

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::notifications::v1 as pb;
use minijinja::{Environment, UndefinedBehavior};

use crate::{
    kinds::kind,
    rules::{Language, MANUAL},
};

/// Checks a template name: 1 to 64 of `a-z`, `0-9`, `_`, `.`.
pub fn check_template_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 of a-z, 0-9, '_' and '.'".into())
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// The variables `source` uses, or why it does not parse.
fn variables_used(source: &str) -> Result<Vec<String>, String> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| format!("does not parse: {}", e.detail().unwrap_or("syntax error")))?;
    let mut used: Vec<String> = template.undeclared_variables(false).into_iter().collect();
    used.sort();
    Ok(used)
}

/// A template as saved: checked for syntax and for variables its kind does not provide.
#[derive(Debug, Clone)]
pub struct TemplateInput {
    /// Name.
    pub name: String,
    /// Language.
    pub language: Language,
    /// Kind.
    pub kind: String,
    /// Subject source.
    pub subject: String,
    /// Body source.
    pub body: String,
    /// Declared variables (manual kind).
    pub variables: Vec<String>,
    /// The version replaced (0: any).
    pub version: i64,
}

impl TemplateInput {
    /// Checks a SaveTemplate request (N-2): a variable its kind does not provide is an error
    /// now, naming the field and the variable, so no message fails for it later.
    pub fn parse(r: &pb::SaveTemplateRequest) -> Result<Self, Error> {
        let t = r.template.clone().unwrap_or_default();
        let mut v = Violations::new();
        v.check("template.name", check_template_name(&t.name));
        let language = v.check("template.language", Language::parse(&t.language));
        let kind = match kind(&t.kind) {
            Some(k) => Some(k),
            None => {
                v.add(
                    "template.kind",
                    format!("no kind {:?}; ListKinds lists them", t.kind),
                );
                None
            }
        };
        text::require(&mut v, "template.subject", &t.subject, 200, Lines::One);
        text::require(&mut v, "template.body", &t.body, 10_000, Lines::Many);
        let mut declared: Vec<String> = Vec::new();
        if let Some(k) = kind {
            if k.name == MANUAL {
                for (i, name) in t.variables.iter().enumerate() {
                    if !is_identifier(name) {
                        v.add(
                            format!("template.variables[{i}]"),
                            "must be a name of a-z, 0-9 and '_', starting with a letter",
                        );
                    }
                }
                declared = t.variables.clone();
                declared.extend(k.variables.iter().map(|s| s.to_string()));
            } else {
                if !t.variables.is_empty() {
                    v.add(
                        "template.variables",
                        "only templates of kind \"manual\" declare variables",
                    );
                }
                declared = k.variables.iter().map(|s| s.to_string()).collect();
            }
        }
        for (field, source) in [("template.subject", &t.subject), ("template.body", &t.body)] {
            match variables_used(source) {
                Err(e) => v.add(field, e),
                Ok(used) if kind.is_some() => {
                    let missing: Vec<&String> =
                        used.iter().filter(|u| !declared.contains(u)).collect();
                    if !missing.is_empty() {
                        v.add(
                            field,
                            format!(
                                "uses {} that kind {:?} does not provide (it provides {})",
                                join(&missing),
                                t.kind,
                                declared.join(", ")
                            ),
                        );
                    }
                }
                Ok(_) => {}
            }
        }
        if r.version < 0 {
            v.add("version", "must not be negative");
        }
        v.finish()?;
        Ok(Self {
            name: t.name,
            language: language.expect("checked"),
            kind: t.kind,
            subject: t.subject,
            body: t.body,
            variables: t.variables,
            version: r.version,
        })
    }
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("{{{{ {n} }}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// Renders a subject and body with `variables`. Templates were checked when saved, so a
/// failure here means a stored template is broken; the message records it as failed.
pub fn render(
    subject: &str,
    body: &str,
    variables: &BTreeMap<String, String>,
) -> Result<(String, String), String> {
    let env = environment();
    let one = |source: &str| {
        env.render_str(source, variables)
            .map_err(|e| format!("template does not render: {e}"))
    };
    Ok((one(subject)?, one(body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(
        kind: &str,
        subject: &str,
        body: &str,
        variables: &[&str],
    ) -> Result<TemplateInput, Error> {
        TemplateInput::parse(&pb::SaveTemplateRequest {
            template: Some(pb::Template {
                name: "t".into(),
                language: "zh".into(),
                kind: kind.into(),
                subject: subject.into(),
                body: body.into(),
                variables: variables.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            version: 0,
        })
    }

    fn violations(e: Error) -> Vec<(String, String)> {
        match e {
            Error::InvalidArgument(v) => v.into_iter().map(|v| (v.field, v.description)).collect(),
            other => panic!("not invalid: {other}"),
        }
    }

    #[test]
    fn a_variable_the_kind_lacks_is_refused_at_save() {
        let ok = save(
            "customers.stage_changed",
            "客户 {{ customer_name }}",
            "{{ from_stage }} → {{ to_stage }}",
            &[],
        );
        assert!(ok.is_ok());
        let e = save(
            "customers.stage_changed",
            "客户 {{ customer_name }}",
            "{{ amount }} {{ to_stage }}",
            &[],
        )
        .unwrap_err();
        let v = violations(e);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "template.body");
        assert!(v[0].1.contains("{{ amount }}"), "{}", v[0].1);
    }

    #[test]
    fn manual_templates_use_declared_variables_only() {
        assert!(
            save(
                "manual",
                "{{ title }}",
                "{{ text }} {{ recipient_name }}",
                &["title", "text"]
            )
            .is_ok()
        );
        let v = violations(save("manual", "{{ title }}", "{{ text }}", &["title"]).unwrap_err());
        assert_eq!(v[0].0, "template.body");
        let v = violations(save("customers.care_due", "x", "y", &["title"]).unwrap_err());
        assert_eq!(v[0].0, "template.variables");
    }

    #[test]
    fn syntax_errors_unknown_kinds_and_languages_are_refused() {
        let v = violations(save("nope", "{{ x", "", &[]).unwrap_err());
        let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"template.kind"));
        assert!(fields.contains(&"template.subject"));
        assert!(fields.contains(&"template.body"));
    }

    #[test]
    fn renders_chinese_and_english() {
        let vars: BTreeMap<String, String> =
            [("customer_name".to_string(), "上海精工".to_string())].into();
        let (s, b) = render(
            "客户 {{ customer_name }}",
            "Dear {{ customer_name }}",
            &vars,
        )
        .unwrap();
        assert_eq!(s, "客户 上海精工");
        assert_eq!(b, "Dear 上海精工");
        assert!(render("{{ missing }}", "", &vars).is_err());
    }
}
