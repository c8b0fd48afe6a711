//! The quotes' pure rules (P-3): checked lines, their exact total, the largest discount, and
//! the digest an approval is bound to — any change of a line, price or discount changes it.

use crm_kit::{
    Result, Violations, money,
    text::{self, Lines},
};
use crm_proto::{common::v1::Money, pipeline::v1 as pb};
use sha2::{Digest, Sha256};

/// Checked quote lines with what follows from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// The lines, texts trimmed.
    pub lines: Vec<pb::QuoteLine>,
    /// Their currency.
    pub currency: String,
    /// The total after discounts.
    pub total: Money,
    /// The largest discount, in basis points.
    pub max_discount_bp: i32,
    /// SHA-256 of the lines in a fixed encoding.
    pub digest: Vec<u8>,
}

/// Checks `lines` (at `field`) and prices them: at least one line, each with a product, a
/// quantity of at least 1, a positive unit price in one known currency and a discount of
/// 0–10000 basis points.
pub fn price(field: &str, lines: &[pb::QuoteLine]) -> Result<Priced> {
    let mut v = Violations::new();
    if lines.is_empty() {
        v.add(field, "a quote has at least one line");
    }
    let currency = lines
        .first()
        .and_then(|l| l.unit_price.as_ref())
        .map(|m| m.currency_code.clone())
        .unwrap_or_default();
    let mut total: i128 = 0;
    let mut max_discount_bp = 0;
    let mut hash = Sha256::new();
    let mut checked = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let at = |f: &str| format!("{field}[{i}].{f}");
        text::require(&mut v, &at("product"), &l.product, 200, Lines::One);
        if l.quantity < 1 {
            v.add(at("quantity"), "must be at least 1");
        }
        match money::problem(l.unit_price.as_ref()) {
            Some(p) => v.add(at("unit_price"), p),
            None if l
                .unit_price
                .as_ref()
                .is_some_and(|m| m.currency_code != currency) =>
            {
                v.add(
                    at("unit_price"),
                    "every line is in the quote's one currency",
                );
            }
            None => {}
        }
        if !(0..=10_000).contains(&l.discount_bp) {
            v.add(at("discount_bp"), "must be 0 … 10000 basis points");
        }
        let price = l.unit_price.as_ref().map_or(0, money::to_nanos);
        // exact: quantity × price × (10000 − discount) / 10000, rounded down to the nano
        total += i128::from(l.quantity.max(0))
            * price
            * i128::from(10_000 - l.discount_bp.clamp(0, 10_000))
            / 10_000;
        max_discount_bp = max_discount_bp.max(l.discount_bp);
        let line = pb::QuoteLine {
            product: l.product.trim().to_string(),
            ..l.clone()
        };
        let m = line.unit_price.clone().unwrap_or_default();
        hash.update(
            format!(
                "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1e}",
                line.product, line.quantity, m.currency_code, m.units, m.nanos, line.discount_bp
            )
            .as_bytes(),
        );
        checked.push(line);
    }
    v.finish()?;
    Ok(Priced {
        lines: checked,
        total: money::from_nanos(&currency, total),
        currency,
        max_discount_bp,
        digest: hash.finalize().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product: &str, quantity: i32, units: i64, discount_bp: i32) -> pb::QuoteLine {
        pb::QuoteLine {
            product: product.into(),
            quantity,
            unit_price: Some(Money {
                currency_code: "CNY".into(),
                units,
                nanos: 0,
            }),
            discount_bp,
        }
    }

    #[test]
    fn a_quote_is_priced_exactly_and_any_change_changes_its_digest() {
        let q = price(
            "quote.lines",
            &[line("服务器", 3, 10_000, 1500), line("实施", 1, 999, 0)],
        )
        .unwrap();
        // 3 × 10000 × 0.85 + 999 = 26499
        assert_eq!(q.total, money::from_nanos("CNY", 26_499 * 1_000_000_000));
        assert_eq!(q.max_discount_bp, 1500);
        let same = price(
            "quote.lines",
            &[line("服务器", 3, 10_000, 1500), line("实施", 1, 999, 0)],
        )
        .unwrap();
        assert_eq!(q.digest, same.digest);
        for changed in [
            vec![line("服务器", 4, 10_000, 1500), line("实施", 1, 999, 0)],
            vec![line("服务器", 3, 10_001, 1500), line("实施", 1, 999, 0)],
            vec![line("服务器", 3, 10_000, 1501), line("实施", 1, 999, 0)],
            vec![line("服务器", 3, 10_000, 1500)],
        ] {
            assert_ne!(price("quote.lines", &changed).unwrap().digest, q.digest);
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let mut other = line("b", 1, 5, 0);
        other.unit_price.as_mut().unwrap().currency_code = "USD".into();
        let e = price("quote.lines", &[line("", 0, -1, 20_000), other]).unwrap_err();
        let fields: Vec<String> = match e {
            crm_kit::Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fields,
            [
                "quote.lines[0].product",
                "quote.lines[0].quantity",
                "quote.lines[0].unit_price",
                "quote.lines[0].discount_bp",
                "quote.lines[1].unit_price"
            ]
        );
        assert!(price("quote.lines", &[]).is_err());
    }
}
