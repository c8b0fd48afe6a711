//! The checked SetPartnerEndpoint: a partner's webhook (N-4).

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::notifications::v1 as pb;

use crate::rules::Language;

/// A SetPartnerEndpoint request, checked.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    /// Partner organisation.
    pub partner_id: String,
    /// URL.
    pub url: String,
    /// HMAC secret.
    pub secret: String,
    /// Language.
    pub language: Language,
}

impl EndpointInput {
    /// Checks a SetPartnerEndpoint request.
    pub fn parse(r: &pb::SetPartnerEndpointRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        text::require(&mut v, "partner_id", &r.partner_id, 100, Lines::One);
        let scheme_ok = r.url.starts_with("https://") || r.url.starts_with("http://");
        if !scheme_ok || r.url.len() > 500 || r.url.contains(char::is_whitespace) {
            v.add("url", "must be an http(s):// URL of at most 500 characters");
        }
        text::check(&mut v, "secret", &r.secret, 200, Lines::One);
        if r.secret.chars().count() < 16 || r.secret.chars().count() > 200 {
            v.add("secret", "must be 16 to 200 characters");
        }
        let language = if r.language.is_empty() {
            Some(Language::Zh)
        } else {
            v.check("language", Language::parse(&r.language))
        };
        v.finish()?;
        Ok(Self {
            partner_id: r.partner_id.trim().to_string(),
            url: r.url.clone(),
            secret: r.secret.clone(),
            language: language.expect("checked"),
        })
    }
}
