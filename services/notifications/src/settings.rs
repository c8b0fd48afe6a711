//! The `[notifications]` settings, checked when the service starts: a rule with an unknown
//! event kind, selector or channel stops the start instead of failing quietly later.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{
    kinds::kind,
    rules::{Channel, Language, MANUAL, Selector},
    templates::rules::check_template_name,
};

/// The `[notifications]` section.
#[derive(Debug, Clone, Deserialize)]
pub struct NotificationSettings {
    /// The working calendar's offset from UTC (from `[calendar]`), for times in messages.
    #[serde(skip, default)]
    pub utc_offset_hours: i8,
    /// Language of recipients without one.
    pub default_language: String,
    /// Language of a customer's contacts by the customer's region.
    pub region_languages: BTreeMap<String, String>,
    /// Seconds within which an urgent message must be sent (N-4).
    pub urgent_deadline_s: i64,
    /// How long an event waits for the users it names to reach the directory.
    pub directory_wait_s: i64,
    /// Attempts before a delivery is failed.
    pub max_attempts: i32,
    /// First retry delay.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// How often an idle sender looks for due deliveries.
    pub send_poll_ms: u64,
    /// Deliveries a sender claims at once.
    pub send_batch: i64,
    /// Deliveries a sender sends at the same time.
    pub send_concurrency: usize,
    /// How long a claim lasts.
    pub lease_ms: u64,
    /// Provider per channel.
    pub providers: ProviderSettings,
    /// The SMTP provider.
    pub smtp: SmtpSettings,
    /// The HTTP SMS provider.
    pub sms_http: SmsHttpSettings,
    /// The webhook provider.
    pub webhook: WebhookSettings,
    /// The triggers.
    #[serde(default)]
    pub rules: Vec<RuleSettings>,
}

/// Which provider serves each channel.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSettings {
    /// `sink` or `http`.
    pub sms: String,
    /// `sink` or `smtp`.
    pub email: String,
    /// `http` or `sink`.
    pub webhook: String,
}

/// SMTP server settings.
#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub security: String,
    /// User name; empty for no authentication.
    pub username: String,
    /// Password.
    pub password: String,
    /// The From header.
    pub from: String,
    /// Per-message timeout.
    pub timeout_ms: u64,
}

/// HTTP SMS gateway settings.
#[derive(Debug, Clone, Deserialize)]
pub struct SmsHttpSettings {
    /// The gateway's URL.
    pub url: String,
    /// Bearer token.
    pub token: String,
    /// Per-message timeout.
    pub timeout_ms: u64,
}

/// Webhook settings.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Per-message timeout.
    pub timeout_ms: u64,
}

/// One trigger as configured.
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSettings {
    /// The event type.
    pub event: String,
    /// The template name.
    pub template: String,
    /// Recipient selectors.
    pub to: Vec<String>,
    /// Channels.
    pub channels: Vec<String>,
    /// Whether every message of the rule is urgent.
    #[serde(default)]
    pub urgent: bool,
}

/// A checked trigger.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The event type.
    pub event: String,
    /// The template name.
    pub template: String,
    /// Who gets the message.
    pub to: Vec<Selector>,
    /// Over which channels.
    pub channels: Vec<Channel>,
    /// Whether every message of the rule is urgent.
    pub urgent: bool,
}

impl NotificationSettings {
    /// The section from the loaded configuration.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        let mut own: Self = settings.section("notifications")?;
        own.utc_offset_hours = settings.calendar.utc_offset_hours;
        Ok(own)
    }

    /// The working time zone messages show times in (`calendar.utc_offset_hours`).
    pub fn utc_offset(&self) -> Result<time::UtcOffset, crm_kit::Error> {
        time::UtcOffset::from_hms(self.utc_offset_hours, 0, 0)
            .map_err(|e| crm_kit::Error::Internal(e.into()))
    }

    /// The rules, checked: known event kinds, selectors and channels.
    pub fn checked_rules(&self) -> anyhow::Result<Vec<Rule>> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let at = |what: &str| format!("notifications.rules[{i}].{what}");
                if kind(&r.event).is_none() || r.event == MANUAL {
                    anyhow::bail!("{}: no event kind {:?}", at("event"), r.event);
                }
                check_template_name(&r.template)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at("template")))?;
                let to = r
                    .to
                    .iter()
                    .map(|s| Selector::parse(s).map_err(|e| anyhow::anyhow!("{}: {e}", at("to"))))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let channels = r
                    .channels
                    .iter()
                    .map(|c| {
                        Channel::parse_config(c)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", at("channels")))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if to.is_empty() || channels.is_empty() {
                    anyhow::bail!("{}: a rule needs recipients and channels", at("to"));
                }
                Ok(Rule {
                    event: r.event.clone(),
                    template: r.template.clone(),
                    to,
                    channels,
                    urgent: r.urgent,
                })
            })
            .collect()
    }

    /// The language for a customer's contacts in `region`.
    pub fn language_of_region(&self, region: &str) -> Language {
        self.region_languages
            .get(region)
            .and_then(|l| Language::parse(l).ok())
            .unwrap_or_else(|| self.default_language())
    }

    /// The default language.
    pub fn default_language(&self) -> Language {
        Language::parse(&self.default_language).unwrap_or(Language::Zh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_are_valid() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let n = NotificationSettings::from_settings(&settings).unwrap();
        let rules = n.checked_rules().unwrap();
        assert!(
            rules
                .iter()
                .any(|r| r.event == "customers.partner_change_requested")
        );
        assert_eq!(n.language_of_region("europe"), Language::En);
        assert_eq!(n.language_of_region("华东"), Language::Zh);
    }

    #[test]
    fn a_bad_rule_is_refused_with_its_place() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let mut n = NotificationSettings::from_settings(&settings).unwrap();
        n.rules[0].to = vec!["everyone".into()];
        let e = n.checked_rules().unwrap_err().to_string();
        assert!(e.contains("notifications.rules[0].to"), "{e}");
        n.rules[0].to = vec!["owner".into()];
        n.rules[0].event = "customers.nothing".into();
        assert!(n.checked_rules().is_err());
    }
}
