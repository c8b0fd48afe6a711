//! The import's duplicate rules (C-2), with no I/O: the keys duplicates are found by (the
//! normalised name without its legal form, the phone, the e-mail) and the verdict on each row
//! of a batch against earlier rows and existing customers.

use std::collections::HashMap;

use uuid::Uuid;

use super::template::Rejection;
use crate::records::rules::CustomerFields;

/// A duplicate key as a report shows it: a phone as it is dialled at home (`phone:13800138000`,
/// not the stored `+8613800138000`).
pub fn shown_key(key: &str) -> String {
    match key.strip_prefix("phone:") {
        Some(phone) => format!("phone:{}", crm_kit::phone::national(phone)),
        None => key.to_string(),
    }
}

/// The keys a customer is a duplicate by: its normalised name, and each contact's normalised
/// phone and e-mail (`name:…`, `phone:…`, `email:…`).
pub fn dedup_keys(c: &CustomerFields) -> Vec<String> {
    let mut keys = vec![format!("name:{}", c.dedup_name)];
    for contact in &c.contacts {
        if !contact.phone_key.is_empty() {
            keys.push(format!("phone:{}", contact.phone_key));
        }
        let email = crm_kit::email::key(&contact.email);
        if !email.is_empty() {
            keys.push(format!("email:{email}"));
        }
    }
    keys
}

/// What the database holds for a duplicate key: a live customer with it, and the row of the
/// running import that created that customer, if one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The customer (the oldest, when several have the key).
    pub customer: Uuid,
    /// The earliest row of this import that created a customer with the key.
    pub row: Option<i64>,
}

impl Known {
    /// Folds matches `(key, customer, row of this import)` into one `Known` per key.
    pub fn by_key(matches: Vec<(String, Uuid, Option<i64>)>) -> HashMap<String, Known> {
        let mut known: HashMap<String, Known> = HashMap::new();
        for (key, customer, row) in matches {
            known
                .entry(key)
                .and_modify(|k| {
                    k.customer = k.customer.min(customer);
                    k.row = match (k.row, row) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                })
                .or_insert(Known { customer, row });
        }
        known
    }
}

/// What becomes of one row.
#[derive(Debug)]
pub enum Verdict {
    /// Refused, with each column and reason.
    Rejected(Vec<Rejection>),
    /// The same key as an earlier row of the file, which was accepted.
    DuplicateOfRow { row: i64, key: String },
    /// The same key as a customer that existed before the file.
    DuplicateOfCustomer { customer: Uuid, key: String },
    /// A new customer.
    Accepted(Box<CustomerFields>),
}

/// Decides a batch of rows, in file order: a row sharing a key with an earlier accepted row of
/// the file (in this batch, or in `known` as created by this import) is a duplicate of the
/// earliest such row; else one sharing a key with an existing customer is a duplicate of it
/// (keys in the order name, phone, e-mail); else it is accepted.
pub fn decide(
    rows: Vec<(i64, Result<CustomerFields, Vec<Rejection>>)>,
    known: &HashMap<String, Known>,
) -> Vec<(i64, Verdict)> {
    let mut accepted: HashMap<String, i64> = HashMap::new();
    rows.into_iter()
        .map(|(row, parsed)| {
            let fields = match parsed {
                Ok(fields) => fields,
                Err(rejections) => return (row, Verdict::Rejected(rejections)),
            };
            let keys = dedup_keys(&fields);
            let earlier = keys
                .iter()
                .filter_map(|key| {
                    let here = accepted.get(key).copied();
                    let before = known.get(key).and_then(|k| k.row);
                    here.into_iter().chain(before).min().map(|r| (r, key))
                })
                .min();
            if let Some((earlier, key)) = earlier {
                let key = key.clone();
                return (row, Verdict::DuplicateOfRow { row: earlier, key });
            }
            if let Some((key, k)) = keys.iter().find_map(|key| known.get(key).map(|k| (key, k))) {
                let (customer, key) = (k.customer, key.clone());
                return (row, Verdict::DuplicateOfCustomer { customer, key });
            }
            for key in keys {
                accepted.entry(key).or_insert(row);
            }
            (row, Verdict::Accepted(Box::new(fields)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        import::template::{Header, tests::record},
        rules::name_dedup_key,
    };

    #[test]
    fn duplicates_are_found_by_normalised_name_phone_and_email() {
        for (a, b) in [
            ("杭州云帆软件股份有限公司", "杭州云帆软件"),
            ("杭州云帆软件有限公司", "杭州云帆软件 （集团）"),
            ("ＡＢＣ Technology Co., Ltd.", "abc technology"),
            ("Contoso Ltd", "CONTOSO LIMITED"),
        ] {
            assert_eq!(name_dedup_key(a), name_dedup_key(b), "{a} / {b}");
        }
        assert_ne!(name_dedup_key("杭州云帆"), name_dedup_key("杭州云帆软件"));
        let (a, b) = (
            fields("x", "+86 138-0013-8000", "Wang@Example.CN"),
            fields("x", "13800138000", "wang@example.cn"),
        );
        assert_eq!(dedup_keys(&a), dedup_keys(&b));
        let shown: Vec<String> = dedup_keys(&a).iter().map(|k| shown_key(k)).collect();
        assert_eq!(
            shown,
            ["name:x", "phone:13800138000", "email:wang@example.cn"]
        );
    }

    fn fields(name: &str, phone: &str, email: &str) -> CustomerFields {
        let h = Header::parse(&record(&[
            "name",
            "region",
            "contact_name",
            "contact_phone",
            "contact_email",
        ]))
        .unwrap();
        h.row(&record(&[name, "华东", "王", phone, email])).unwrap()
    }

    #[test]
    fn a_batch_is_decided_in_file_order_against_earlier_rows_and_existing_customers() {
        let existing = Uuid::now_v7();
        let known = Known::by_key(vec![
            // an older customer with this phone, and one this import made at row 3
            ("phone:+8613900000009".into(), existing, None),
            ("name:earlier".into(), Uuid::now_v7(), Some(3)),
            ("name:earlier".into(), Uuid::now_v7(), Some(2)),
        ]);
        let rows = vec![
            (10, Ok(fields("new", "13900000001", ""))),
            (
                11,
                Err(vec![Rejection {
                    column: "name".into(),
                    reason: "is required".into(),
                }]),
            ),
            (12, Ok(fields("NEW 有限公司", "13900000002", ""))),
            (13, Ok(fields("other", "13900000009", ""))),
            (14, Ok(fields("Earlier", "13900000009", ""))),
            (15, Ok(fields("third", "", "a@b.cn"))),
            (16, Ok(fields("fourth", "139-0000-0001", "A@B.cn"))),
        ];
        let got: Vec<String> = decide(rows, &known)
            .into_iter()
            .map(|(row, v)| match v {
                Verdict::Accepted(f) => format!("{row} accepted {}", f.display_name),
                Verdict::Rejected(r) => format!("{row} rejected {}", r[0].column),
                Verdict::DuplicateOfRow { row: of, key } => {
                    format!("{row} row {of} by {}", shown_key(&key))
                }
                Verdict::DuplicateOfCustomer { customer, key } => {
                    assert_eq!(customer, existing);
                    format!("{row} existing by {}", shown_key(&key))
                }
            })
            .collect();
        assert_eq!(
            got,
            [
                "10 accepted new",
                "11 rejected name",
                "12 row 10 by name:new",
                "13 existing by phone:13900000009",
                "14 row 2 by name:earlier",
                "15 accepted third",
                "16 row 10 by phone:13900000001",
            ]
        );
    }
}
