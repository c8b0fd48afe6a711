//! Property tests of the kit's parsers at the API edge (issue 21, point 4): free text, phone
//! numbers (entered and searched), e-mail addresses, ids, page tokens and field masks, fed
//! random strings with control characters, NUL, right-to-left marks, full-width digits and
//! very long runs. Each answers a clear error or a value — never a panic — and what it accepts
//! obeys its rule.

use crm_kit::{
    Error, Violations,
    email::Email,
    mask::Mask,
    paging::{Pager, PagingSettings},
    phone::{self, Phone},
    text::{self, Lines},
};
use crm_proto::common::v1::PageRequest;
use proptest::prelude::*;

/// Strings a hostile or careless client sends: anything, mostly short; or built from the
/// characters parsers trip on; or long runs of one of them.
fn nasty() -> impl Strategy<Value = String> {
    let awkward = prop::sample::select(vec![
        '\0', '\n', '\r', '\t', '\u{7f}', '\u{1b}', '\u{202e}', '\u{200f}', '\u{feff}', '\u{2028}',
        '０', '１', '８', '＋', '（', '）', '+', '-', '.', '(', ')', ' ', '@', '0', '1', '8', '9',
        'a', '中', '😀', '\u{301}',
    ]);
    prop_oneof![
        3 => any::<String>(),
        3 => prop::collection::vec(awkward.clone(), 0..64).prop_map(|v| v.into_iter().collect()),
        1 => (awkward, 1000..70_000usize).prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn text_is_refused_exactly_when_it_breaks_the_rule(value in nasty(), max in 0..200usize) {
        for lines in [Lines::One, Lines::Many] {
            let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
            let breaks = value.contains('\0')
                || value.chars().any(|c| c.is_control() && !allowed(c))
                || value.chars().count() > max;
            prop_assert_eq!(text::problem(&value, max, lines).is_some(), breaks);
        }
    }

    #[test]
    fn a_phone_number_is_parsed_or_refused_and_an_accepted_one_is_stable(value in nasty()) {
        // the key is also what a search filter's phone becomes: any input, no panic
        let searched = phone::key(&value);
        prop_assert!(searched.is_empty() || searched.starts_with('+'), "{searched:?}");
        if let Ok(p) = Phone::parse(&value) {
            prop_assert!(text::problem(p.as_str(), 40, Lines::One).is_none());
            let again = Phone::parse(p.as_str()).expect("an accepted number parses again");
            prop_assert_eq!(again.key(), p.key());
            prop_assert!(p.key().starts_with('+'));
        }
    }

    #[test]
    fn an_email_is_parsed_or_refused_and_an_accepted_one_is_stable(value in nasty()) {
        if let Ok(e) = Email::parse(&value) {
            prop_assert!(e.as_str().contains('@'));
            prop_assert!(!e.as_str().chars().any(|c| c.is_whitespace() || c.is_control()));
            let again = Email::parse(e.as_str()).unwrap();
            prop_assert_eq!(again.key(), e.key());
        }
    }

    #[test]
    fn ids_are_uuids_or_refused_naming_the_field(value in nasty()) {
        match crm_kit::convert::id("customer_id", &value) {
            Ok(id) => prop_assert_eq!(uuid::Uuid::parse_str(&value).ok(), Some(id)),
            Err(Error::InvalidArgument(v)) => prop_assert_eq!(&v[0].field, "customer_id"),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn page_tokens_are_honoured_only_as_issued(
        token in nasty(),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        key in any::<(i64, String)>(),
        flip in any::<prop::sample::Index>(),
        size in any::<i32>(),
    ) {
        let pager = Pager::new(&PagingSettings {
            default_page_size: 20,
            max_page_size: 100,
            token_key: "property-test-key".into(),
        });
        let refused = |r: Result<crm_kit::paging::Page<(i64, String)>, Error>| match r {
            Err(Error::InvalidArgument(v)) => v[0].field.starts_with("page."),
            _ => false,
        };
        // anything a client makes up, raw or as base64 of random bytes
        let forged = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &bytes);
        for t in [token.clone(), forged] {
            if t.is_empty() {
                continue;
            }
            let page = PageRequest { page_size: size, page_token: t };
            prop_assert!(refused(pager.read::<(i64, String)>(Some(&page), "filter")));
        }
        // a real token: read back as issued; refused with another filter or one byte changed
        let first = pager.read::<(i64, String)>(None, "filter").unwrap();
        let mut rows: Vec<(i64, String)> = vec![key.clone(); first.limit() as usize];
        let next = pager.finish(&first, &mut rows, "filter", Clone::clone).next_page_token;
        let page = |t: String| PageRequest { page_size: 0, page_token: t };
        let read = pager.read::<(i64, String)>(Some(&page(next.clone())), "filter").unwrap();
        prop_assert_eq!(read.after, Some(key));
        prop_assert!(refused(pager.read::<(i64, String)>(Some(&page(next.clone())), "other")));
        let mut tampered = next.into_bytes();
        let i = flip.index(tampered.len());
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        prop_assert!(refused(pager.read::<(i64, String)>(Some(&page(tampered)), "filter")));
        // sizes: negative refused, others within the maximum
        match pager.read::<(i64, String)>(Some(&PageRequest { page_size: size, page_token: String::new() }), "f") {
            Ok(p) => prop_assert!(size >= 0 && p.size >= 1 && p.size <= 100),
            Err(_) => prop_assert!(size < 0),
        }
    }

    #[test]
    fn a_mask_sets_only_updatable_fields_and_names_every_other(
        paths in prop::collection::vec(prop_oneof![
            Just("display_name".to_string()),
            Just("stage".to_string()),
            nasty(),
        ], 0..8),
    ) {
        let mask = Mask { updatable: &["display_name", "region"], elsewhere: &[("stage", "ChangeStage")] };
        let mut v = Violations::new();
        let mut set = Vec::new();
        mask.apply(&mut v, &paths, |p| set.push(p.to_string()));
        let refused = paths.iter().filter(|p| !["display_name", "region"].contains(&p.as_str())).count();
        prop_assert!(set.iter().all(|p| p == "display_name" || p == "region"));
        match v.finish() {
            Ok(()) => prop_assert!(!paths.is_empty() && refused == 0),
            Err(Error::InvalidArgument(list)) => {
                prop_assert!(list.iter().all(|x| x.field == "update_mask"));
                prop_assert_eq!(list.len(), refused + usize::from(paths.is_empty()));
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}
