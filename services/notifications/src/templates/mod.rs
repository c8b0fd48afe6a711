//! Templates (N-1): saved with their version checked and their variables checked against the
//! kind, read one by one and listed by name and language; the defaults installed by `crm
//! migrate` ([`defaults`]).

pub mod defaults;
pub mod rules;
mod store;

pub(crate) use store::find_template;

use crm_kit::{Error, Result, audit, context::Call};
use crm_proto::{common::v1::PageRequest, notifications::v1 as pb};

use crate::{
    service::{NameKey, Notifications, not_found},
    templates::rules::TemplateInput,
};

impl Notifications {
    /// Saves a template, checking the version when one is given.
    pub async fn save_template(&self, t: TemplateInput, call: &Call) -> Result<pb::Template> {
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let current = store::lock_template_version(&mut tx, &t.name, t.language).await?;
        if t.version != 0 && t.version != current {
            return Err(Error::StaleVersion {
                kind: "template",
                id: format!("{}/{}", t.name, t.language.as_str()),
                given: t.version,
                current,
            });
        }
        let now = self.clock.now();
        let saved =
            store::save_template(&mut tx, &t, current + 1, now, &call.principal.subject).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("templates/{}/{}", t.name, t.language.as_str()),
            &["kind", "subject", "body", "variables"],
        )
        .await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// One template.
    pub async fn template(&self, name: &str, language: &str) -> Result<pb::Template> {
        let mut conn = self.pool.acquire().await?;
        store::get_template(&mut conn, name, language)
            .await?
            .ok_or_else(|| not_found("template", format!("{name}/{language}")))
    }

    /// Templates by name and language.
    pub async fn templates(&self, page: Option<&PageRequest>) -> Result<pb::ListTemplatesResponse> {
        let page = self.pager.read::<NameKey>(page, "templates")?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_templates(
            &mut conn,
            page.after.as_ref().map(|k| (k.0.clone(), k.1.clone())),
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut rows, "templates", |t| {
            NameKey(t.name.clone(), t.language.clone())
        });
        Ok(pb::ListTemplatesResponse {
            templates: rows,
            page: Some(next),
        })
    }
}
