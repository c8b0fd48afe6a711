//! The customer import template (C-2), with no I/O: the columns and their Chinese aliases,
//! the file's encoding (UTF-8 with or without BOM, or GBK), one row turned into a customer or
//! rejected with the column and the reason, and the keys duplicates are found by. The columns
//! are documented in `docs/import.md`; `docs/import-sample.csv` is a sample file.

use std::collections::HashMap;

use crm_kit::Error;
use crm_proto::customers::v1 as pb;
use encoding_rs::{CoderResult, GBK, UTF_8};
use uuid::Uuid;

use crate::{records::rules::CustomerFields, rules::name_key};

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

/// How a file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 starting with a byte-order mark (as Excel writes "CSV UTF-8").
    Utf8Bom,
    /// GBK (GB 2312 and its extension), as Chinese Excel writes plain "CSV".
    Gbk,
}

impl Encoding {
    /// Detects the encoding from the file's first bytes (at least a few KiB when the file has
    /// them): a UTF-8 BOM; else UTF-8 if the bytes are valid UTF-8 (a sequence cut at the end
    /// is allowed); else GBK.
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Self::Utf8Bom;
        }
        match std::str::from_utf8(head) {
            Ok(_) => Self::Utf8,
            // valid up to a multi-byte character the sample cut in two
            Err(e) if e.error_len().is_none() => Self::Utf8,
            Err(_) => Self::Gbk,
        }
    }
}

/// Turns a file's bytes, chunk by chunk, into text: a chunk may end inside a character.
pub struct Decoder {
    inner: encoding_rs::Decoder,
    /// Whether the decoder met bytes its encoding does not allow.
    pub malformed: bool,
}

impl Decoder {
    /// A decoder for `encoding` (a UTF-8 BOM is removed).
    pub fn new(encoding: Encoding) -> Self {
        let inner = match encoding {
            Encoding::Utf8 | Encoding::Utf8Bom => UTF_8.new_decoder_with_bom_removal(),
            Encoding::Gbk => GBK.new_decoder_without_bom_handling(),
        };
        Self {
            inner,
            malformed: false,
        }
    }

    /// Decodes `bytes` onto `out`; `last` for the file's final chunk.
    pub fn feed(&mut self, bytes: &[u8], out: &mut String, last: bool) {
        let need = self
            .inner
            .max_utf8_buffer_length(bytes.len())
            .unwrap_or(bytes.len() * 3 + 16);
        out.reserve(need);
        let mut rest = bytes;
        loop {
            let (result, read, replaced) = self.inner.decode_to_string(rest, out, last);
            self.malformed |= replaced;
            rest = &rest[read..];
            match result {
                CoderResult::InputEmpty => break,
                CoderResult::OutputFull => out.reserve(rest.len() * 3 + 16),
            }
        }
    }
}

/// Why a file cannot be imported at all.
fn file_error(reason: impl Into<String>) -> Error {
    Error::invalid("file", reason)
}

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

/// Cuts decoded text into blocks of whole CSV records: a newline ends a record only outside
/// quotes, so a quoted cell may hold line breaks and a chunk may end anywhere.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: String,
    scanned: usize,
    in_quotes: bool,
    boundary: usize,
}

impl Splitter {
    /// Adds text; returns the whole records it completes, if any.
    pub fn push(&mut self, text: &str) -> Option<String> {
        self.pending.push_str(text);
        for (i, ch) in self.pending[self.scanned..].char_indices() {
            match ch {
                '"' => self.in_quotes = !self.in_quotes,
                '\n' if !self.in_quotes => self.boundary = self.scanned + i + 1,
                _ => {}
            }
        }
        self.scanned = self.pending.len();
        if self.boundary == 0 {
            return None;
        }
        let done: String = self.pending.drain(..self.boundary).collect();
        self.scanned -= self.boundary;
        self.boundary = 0;
        Some(done)
    }

    /// The last record, if the file did not end with a newline.
    pub fn finish(self) -> String {
        self.pending
    }
}

/// The records of a block of whole CSV records (blank lines skipped).
pub fn records(block: &str) -> Result<Vec<csv::StringRecord>, csv::Error> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(block.as_bytes())
        .records()
        .filter(|r| {
            r.as_ref()
                .map_or(true, |r| !(r.len() == 1 && r[0].trim().is_empty()))
        })
        .collect()
}

/// Legal-form words dropped from the end of a normalised name, so that "杭州云帆软件股份有限公司",
/// "杭州云帆软件" and "杭州云帆软件 Co., Ltd." are one customer.
const SUFFIXES: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团",
    "公司",
    "co.,ltd.",
    "co.,ltd",
    "co.ltd.",
    "co.ltd",
    "company limited",
    "companylimited",
    "limited",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
    "corporation",
    "corp.",
    "corp",
    "llc",
    "gmbh",
    "co.",
];

/// The name as duplicates are found by: [`name_key`] (NFKC, lowercase, no spaces) without the
/// legal form and trailing punctuation.
pub fn name_dedup_key(name: &str) -> String {
    let mut key = name_key(name);
    loop {
        let trimmed = key.trim_end_matches([',', '.', '，', '。', '、', '(', ')', '（', '）']);
        let stripped = SUFFIXES
            .iter()
            .find_map(|s| trimmed.strip_suffix(s))
            .filter(|rest| !rest.is_empty());
        match stripped {
            Some(rest) => key = rest.to_string(),
            None => {
                key = trimmed.to_string();
                return key;
            }
        }
    }
}

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

    fn record(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    /// Reads a whole file as the import will: detect, decode, parse.
    fn read(bytes: &[u8]) -> (Encoding, Vec<csv::StringRecord>) {
        let encoding = Encoding::detect(&bytes[..bytes.len().min(4096)]);
        let mut decoder = Decoder::new(encoding);
        let mut text = String::new();
        // in small chunks, so characters are cut between them
        let chunks: Vec<&[u8]> = bytes.chunks(7).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            decoder.feed(chunk, &mut text, i + 1 == chunks.len());
        }
        assert!(!decoder.malformed);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        (encoding, reader.records().map(Result::unwrap).collect())
    }

    #[test]
    fn utf8_with_and_without_bom_and_gbk_files_read_the_same() {
        let text = "客户名称,区域,联系电话\n杭州云帆软件股份有限公司,华东,0571-8765 4321\n";
        let plain = read(text.as_bytes());
        let mut with_bom = vec![0xEF, 0xBB, 0xBF];
        with_bom.extend_from_slice(text.as_bytes());
        let bom = read(&with_bom);
        let (gbk_bytes, _, unmappable) = GBK.encode(text);
        assert!(!unmappable);
        let gbk = read(&gbk_bytes);
        assert_eq!(
            (plain.0, bom.0, gbk.0),
            (Encoding::Utf8, Encoding::Utf8Bom, Encoding::Gbk)
        );
        assert_eq!(plain.1, bom.1);
        assert_eq!(plain.1, gbk.1);
        assert_eq!(&gbk.1[1][0], "杭州云帆软件股份有限公司");
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

    #[test]
    fn records_are_cut_only_outside_quotes_whatever_the_chunks() {
        let text = "name,address\n\"Contoso, Ltd\",\"line one\nline two\"\n\nacme,x";
        for size in [1, 2, 5, 64] {
            let mut splitter = Splitter::default();
            let mut got = Vec::new();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(size) {
                let piece: String = piece.iter().collect();
                if let Some(block) = splitter.push(&piece) {
                    got.extend(records(&block).unwrap());
                }
            }
            got.extend(records(&splitter.finish()).unwrap());
            assert_eq!(got.len(), 3, "chunks of {size}");
            assert_eq!(&got[1][1], "line one\nline two");
            assert_eq!(&got[2][0], "acme");
        }
    }

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
