//! Keyset pagination: a page token carries the last row's sort key, bound to the filter it was
//! issued for and authenticated so clients cannot forge one. Lists never use OFFSET.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Issues and reads page tokens and clamps page sizes.
#[derive(Clone, Debug)]
pub struct Pager {
    default_size: u32,
    max_size: u32,
    key: Vec<u8>,
}

/// A decoded page request: how many rows to fetch and after which key.
#[derive(Debug)]
pub struct Page<K> {
    /// Rows wanted on this page.
    pub size: u32,
    /// The sort key of the last row of the previous page; `None` for the first page.
    pub after: Option<K>,
}

impl<K> Page<K> {
    /// The LIMIT to query with: one more than the page size, to learn whether a next page exists.
    pub fn limit(&self) -> i64 {
        i64::from(self.size) + 1
    }
}

#[derive(Serialize, Deserialize)]
struct Token<K> {
    k: K,
    f: String,
    m: String,
}

impl Pager {
    /// A pager with the configured sizes and token key.
    pub fn new(settings: &PagingSettings) -> Self {
        Self {
            default_size: settings.default_page_size,
            max_size: settings.max_page_size,
            key: settings.token_key.as_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key length");
        mac.update(payload);
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// Reads a page request; `filter` is any stable rendering of the request's filter, so a
    /// token used with another filter is rejected.
    pub fn read<K: DeserializeOwned>(
        &self,
        page: Option<&crm_proto::common::v1::PageRequest>,
        filter: &str,
    ) -> Result<Page<K>, Error> {
        let (size, token) = page
            .map(|p| (p.page_size, p.page_token.as_str()))
            .unwrap_or((0, ""));
        if size < 0 {
            return Err(Error::invalid("page.page_size", "must not be negative"));
        }
        let size = match size as u32 {
            0 => self.default_size,
            s => s.min(self.max_size),
        };
        if token.is_empty() {
            return Ok(Page { size, after: None });
        }
        let bad = || Error::invalid("page.page_token", "is not a token issued for this filter");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let t: Token<serde_json::Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let body = serde_json::to_vec(&(&t.k, &t.f)).map_err(|_| bad())?;
        if t.m != self.mac(&body) || t.f != self.filter_digest(filter) {
            return Err(bad());
        }
        let key = serde_json::from_value(t.k).map_err(|_| bad())?;
        Ok(Page {
            size,
            after: Some(key),
        })
    }

    fn filter_digest(&self, filter: &str) -> String {
        URL_SAFE_NO_PAD.encode(&Sha256::digest(filter.as_bytes())[..12])
    }

    /// Cuts `rows` (fetched with [`Page::limit`]) to the page and returns the next page token,
    /// made from the last row's key, or an empty token when there is no next page.
    pub fn finish<T, K: Serialize>(
        &self,
        page: &Page<K>,
        rows: &mut Vec<T>,
        filter: &str,
        key_of: impl Fn(&T) -> K,
    ) -> crm_proto::common::v1::PageResponse {
        let more = rows.len() > page.size as usize;
        rows.truncate(page.size as usize);
        let next_page_token = match rows.last() {
            Some(last) if more => {
                let k = serde_json::to_value(key_of(last)).expect("page key serialises");
                let f = self.filter_digest(filter);
                let body = serde_json::to_vec(&(&k, &f)).expect("serialises");
                let m = self.mac(&body);
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Token { k, f, m }).expect("serialises"))
            }
            _ => String::new(),
        };
        crm_proto::common::v1::PageResponse { next_page_token }
    }
}

/// Pagination settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PagingSettings {
    /// Page size when a request gives 0.
    pub default_page_size: u32,
    /// The largest page size a request may ask for.
    pub max_page_size: u32,
    /// Key that authenticates page tokens, so clients cannot forge them.
    pub token_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_proto::common::v1::PageRequest;

    fn pager() -> Pager {
        Pager::new(&PagingSettings {
            default_page_size: 2,
            max_page_size: 3,
            token_key: "k".into(),
        })
    }

    #[test]
    fn token_round_trips_and_is_bound_to_filter() {
        let p = pager();
        let page: Page<(i64, String)> = p.read(None, "f").unwrap();
        assert_eq!(page.size, 2);
        let mut rows = vec![1, 2, 3];
        let resp = p.finish(&page, &mut rows, "f", |r| (*r as i64, format!("id{r}")));
        assert_eq!(rows, [1, 2]);
        let req = PageRequest {
            page_size: 0,
            page_token: resp.next_page_token.clone(),
        };
        let next: Page<(i64, String)> = p.read(Some(&req), "f").unwrap();
        assert_eq!(next.after, Some((2, "id2".to_string())));
        assert!(p.read::<(i64, String)>(Some(&req), "other filter").is_err());
        let forged = PageRequest {
            page_size: 0,
            page_token: "eyJrIjoxfQ".into(),
        };
        assert!(p.read::<(i64, String)>(Some(&forged), "f").is_err());
    }

    #[test]
    fn sizes_are_clamped_and_negative_rejected() {
        let p = pager();
        let big = PageRequest {
            page_size: 100,
            page_token: String::new(),
        };
        assert_eq!(p.read::<i64>(Some(&big), "").unwrap().size, 3);
        let neg = PageRequest {
            page_size: -1,
            page_token: String::new(),
        };
        assert!(p.read::<i64>(Some(&neg), "").is_err());
    }

    #[test]
    fn last_page_has_no_token() {
        let p = pager();
        let page: Page<i64> = p.read(None, "").unwrap();
        let mut rows = vec![1, 2];
        assert!(
            p.finish(&page, &mut rows, "", |r| *r)
                .next_page_token
                .is_empty()
        );
    }
}
