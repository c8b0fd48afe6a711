//! The import template (C-2), with no I/O: the columns and their Chinese aliases, the header
//! of a file, and one row turned into a customer or rejected with the column and the reason.
//! The columns are documented in `docs/import.md`; `docs/import-sample.csv` is a sample file.

use crm_kit::Error;
use crm_proto::customers::v1 as pb;

use super::file::file_error;
use crate::records::rules::CustomerFields;

/// One column of the template: its name, the headers accepted for it, whether it is required.
struct Column {
    name: &'static str,
    aliases: &'static [&'static str],
    required: bool,
}

/// The template's columns, in the order of the sample file.
const COLUMNS: &[Column] = &[
    Column {
        name: "name",
        aliases: &["客户名称", "公司名称", "单位名称"],
        required: true,
    },
    Column {
        name: "region",
        aliases: &["区域", "地区", "大区"],
        required: true,
    },
    Column {
        name: "industry",
        aliases: &["行业"],
        required: false,
    },
    Column {
        name: "address",
        aliases: &["地址"],
        required: false,
    },
    Column {
        name: "source_channel",
        aliases: &["来源", "客户来源"],
        required: false,
    },
    Column {
        name: "contact_name",
        aliases: &["联系人"],
        required: false,
    },
    Column {
        name: "contact_phone",
        aliases: &["联系电话", "电话", "手机"],
        required: false,
    },
    Column {
        name: "contact_email",
        aliases: &["邮箱", "电子邮件", "电子邮箱"],
        required: false,
    },
    Column {
        name: "contact_role",
        aliases: &["职务", "职位"],
        required: false,
    },
    Column {
        name: "tags",
        aliases: &["标签"],
        required: false,
    },
    Column {
        name: "investment_cny",
        aliases: &["累计投资", "累计投资额"],
        required: false,
    },
    Column {
        name: "annual_service_fee_cny",
        aliases: &["年服务费"],
        required: false,
    },
    Column {
        name: "reference_account",
        aliases: &["标杆客户", "战略客户"],
        required: false,
    },
    Column {
        name: "potential_flag",
        aliases: &["潜在客户"],
        required: false,
    },
];

/// The source channels by their names in the template (English and Chinese).
const CHANNELS: &[(&str, pb::SourceChannel)] = &[
    ("campaign", pb::SourceChannel::Campaign),
    ("市场活动", pb::SourceChannel::Campaign),
    ("referral", pb::SourceChannel::Referral),
    ("转介绍", pb::SourceChannel::Referral),
    ("website", pb::SourceChannel::Website),
    ("网站", pb::SourceChannel::Website),
    ("exhibition", pb::SourceChannel::Exhibition),
    ("展会", pb::SourceChannel::Exhibition),
    ("cold_call", pb::SourceChannel::ColdCall),
    ("电话拓展", pb::SourceChannel::ColdCall),
    ("partner", pb::SourceChannel::Partner),
    ("合作伙伴", pb::SourceChannel::Partner),
    ("代理商", pb::SourceChannel::Partner),
    ("hotline", pb::SourceChannel::Hotline),
    ("热线", pb::SourceChannel::Hotline),
    ("other", pb::SourceChannel::Other),
    ("其他", pb::SourceChannel::Other),
];

/// The header of a file: which template column each of its columns is.
#[derive(Debug, Clone)]
pub struct Header {
    /// For each column of the file, the template column's index in [`COLUMNS`].
    columns: Vec<usize>,
}

/// A row refused: the template column (or `row`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The column, named as in the template (`contact_phone`), or `row` for the whole row.
    pub column: String,
    /// Why.
    pub reason: String,
}

impl Header {
    /// Reads the header row: every column must be a template column (by name or alias, case
    /// and surrounding spaces ignored), none twice, the required ones present. The error says
    /// which columns are wrong and what the template accepts.
    pub fn parse(record: &csv::StringRecord) -> Result<Self, Error> {
        let mut columns = Vec::with_capacity(record.len());
        let mut unknown = Vec::new();
        for field in record {
            let key = field.trim().trim_start_matches('\u{feff}').to_lowercase();
            match COLUMNS
                .iter()
                .position(|c| c.name == key || c.aliases.contains(&key.as_str()))
            {
                Some(i) if columns.contains(&i) => {
                    return Err(file_error(format!(
                        "the column {:?} appears twice in the header",
                        COLUMNS[i].name
                    )));
                }
                Some(i) => columns.push(i),
                None => unknown.push(field.trim().to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(file_error(format!(
                "unknown columns {unknown:?}; the template's columns are {} (docs/import.md)",
                COLUMNS
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let missing: Vec<&str> = COLUMNS
            .iter()
            .enumerate()
            .filter(|(i, c)| c.required && !columns.contains(i))
            .map(|(_, c)| c.name)
            .collect();
        if !missing.is_empty() {
            return Err(file_error(format!(
                "the header lacks the required columns {}",
                missing.join(", ")
            )));
        }
        Ok(Self { columns })
    }

    /// Turns one row into the checked fields of the customer it describes (source channel
    /// IMPORT unless given), or the reasons it is refused, each naming its column.
    pub fn row(&self, record: &csv::StringRecord) -> Result<CustomerFields, Vec<Rejection>> {
        if record.len() != self.columns.len() {
            return Err(vec![Rejection {
                column: "row".into(),
                reason: format!(
                    "has {} fields; the header has {}",
                    record.len(),
                    self.columns.len()
                ),
            }]);
        }
        let mut c = pb::Customer {
            source_channel: pb::SourceChannel::Import.into(),
            ..Default::default()
        };
        let mut contact = pb::Contact::default();
        let mut rejections = Vec::new();
        let mut reject = |column: &str, reason: String| {
            rejections.push(Rejection {
                column: column.to_string(),
                reason,
            });
        };
        for (value, &column) in record.iter().zip(&self.columns) {
            let value = value.trim();
            let name = COLUMNS[column].name;
            match name {
                "name" => c.display_name = value.into(),
                "region" => c.region = value.into(),
                "industry" => c.industry = value.into(),
                "address" => c.address = value.into(),
                "source_channel" if !value.is_empty() => {
                    match CHANNELS.iter().find(|(n, _)| *n == value.to_lowercase()) {
                        Some((_, channel)) => c.source_channel = (*channel).into(),
                        None => reject(name, format!("{value:?} is not a source channel")),
                    }
                }
                "contact_name" => contact.name = value.into(),
                "contact_phone" => contact.phone = value.into(),
                "contact_email" => contact.email = value.into(),
                "contact_role" => contact.role = value.into(),
                "tags" => {
                    c.tags = value
                        .split([';', '；', ','])
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect();
                }
                "investment_cny" | "annual_service_fee_cny" if !value.is_empty() => {
                    match value.replace([',', '，'], "").parse::<i64>() {
                        Ok(n) if name == "investment_cny" => c.investment_cny = n,
                        Ok(n) => c.annual_service_fee_cny = n,
                        Err(_) => reject(name, format!("{value:?} is not a whole number of CNY")),
                    }
                }
                "reference_account" | "potential_flag" => match flag(value) {
                    Some(b) if name == "reference_account" => c.reference_account = b,
                    Some(b) => c.potential_flag = b,
                    None => reject(name, format!("{value:?} is not yes/no (是/否, 1/0)")),
                },
                _ => {}
            }
        }
        if contact != pb::Contact::default() {
            c.contacts.push(contact);
        }
        // the customer's own rules, named by the template's columns
        match CustomerFields::parse("c", &c) {
            Ok(fields) if rejections.is_empty() => Ok(fields),
            Ok(_) => Err(rejections),
            Err(e) => {
                let violations = match e {
                    Error::InvalidArgument(violations) => violations,
                    other => vec![crm_kit::error::Violation {
                        field: "row".into(),
                        description: other.to_string(),
                    }],
                };
                for v in violations {
                    rejections.push(Rejection {
                        column: column_of(&v.field).to_string(),
                        reason: v.description,
                    });
                }
                Err(rejections)
            }
        }
    }
}

/// A yes/no cell: empty is no.
fn flag(value: &str) -> Option<bool> {
    match value.to_lowercase().as_str() {
        "" | "0" | "no" | "n" | "false" | "否" => Some(false),
        "1" | "yes" | "y" | "true" | "是" => Some(true),
        _ => None,
    }
}

/// The template column a customer field's violation belongs to.
fn column_of(field: &str) -> &str {
    let field = field.strip_prefix("c.").unwrap_or(field);
    match field {
        "display_name" => "name",
        f if f.starts_with("contacts[0].") => match &f["contacts[0].".len()..] {
            "name" => "contact_name",
            "phone" => "contact_phone",
            "email" => "contact_email",
            "role" => "contact_role",
            _ => "contacts",
        },
        f if f.starts_with("tags") => "tags",
        f => f,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::import::file::{Encoding, tests::read};

    pub(crate) fn record(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    #[test]
    fn the_header_takes_chinese_aliases_and_refuses_unknown_or_missing_columns() {
        let h =
            Header::parse(&record(&["客户名称", " Region ", "联系人", "手机", "邮箱"])).unwrap();
        let c = h
            .row(&record(&[
                "南京长江物流集团",
                "华东",
                "刘强",
                "139 5100 2233",
                "Liu@Example.cn",
            ]))
            .unwrap();
        assert_eq!(c.display_name, "南京长江物流集团");
        assert_eq!(c.contacts[0].phone, "139 5100 2233");
        assert_eq!(c.source_channel, pb::SourceChannel::Import);
        let e = Header::parse(&record(&["name", "region", "fax"])).unwrap_err();
        assert!(e.to_string().contains("unknown columns [\"fax\"]"), "{e}");
        let e = Header::parse(&record(&["name", "industry"])).unwrap_err();
        assert!(e.to_string().contains("required columns region"), "{e}");
        let e = Header::parse(&record(&["name", "region", "公司名称"])).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn a_bad_row_is_refused_with_each_column_and_reason() {
        let h = Header::parse(&record(&[
            "name",
            "region",
            "contact_phone",
            "contact_email",
            "investment_cny",
            "reference_account",
            "source_channel",
        ]))
        .unwrap();
        let refused = h
            .row(&record(&[
                "",
                "华东",
                "12",
                "no-at-sign",
                "12万",
                "maybe",
                "传真",
            ]))
            .unwrap_err();
        let columns: Vec<&str> = refused.iter().map(|r| r.column.as_str()).collect();
        assert_eq!(
            columns,
            [
                "investment_cny",
                "reference_account",
                "source_channel",
                "name",
                "contact_name",
                "contact_phone",
                "contact_email"
            ]
        );
        let too_many = h
            .row(&record(&["a", "b", "c", "d", "e", "f", "g", "h"]))
            .unwrap_err();
        assert_eq!(too_many[0].column, "row");
        assert!(
            too_many[0]
                .reason
                .contains("has 8 fields; the header has 7")
        );
        let ok = h
            .row(&record(&[
                "宁波港信息",
                "华东",
                "",
                "",
                "1,200,000",
                "是",
                "展会",
            ]))
            .unwrap();
        assert_eq!(ok.tier_inputs.investment_cny, 1_200_000);
        assert!(ok.tier_inputs.reference_account);
        assert_eq!(ok.source_channel, pb::SourceChannel::Exhibition);
    }

    #[test]
    fn the_documented_sample_file_reads_with_the_template() {
        let (encoding, records) = read(include_bytes!("../../../../docs/import-sample.csv"));
        assert_eq!(encoding, Encoding::Utf8);
        let header = Header::parse(&records[0]).unwrap();
        let customers: Vec<CustomerFields> = records[1..]
            .iter()
            .map(|r| header.row(r).unwrap())
            .collect();
        assert_eq!(customers.len(), 4);
        assert_eq!(customers[0].tags, ["制造", "参考客户"]);
        assert!(customers[0].tier_inputs.reference_account);
        assert_eq!(customers[3].address, "1 Main St, Springfield");
        assert_eq!(customers[3].source_channel, pb::SourceChannel::Website);
    }
}
