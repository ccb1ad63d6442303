//! Money as FitFlow's contracts carry it (`fitflow.type.v1.Money`): Canadian
//! dollars as decimal strings with at most two decimals, held as
//! `rust_decimal::Decimal` and stored as `NUMERIC(12,2)`.

use std::str::FromStr;

use rust_decimal::Decimal;

/// The only currency FitFlow bills in.
pub const CURRENCY: &str = "CAD";
/// Largest amount `NUMERIC(12,2)` holds.
const MAX_AMOUNT: Decimal = Decimal::from_parts(1_410_065_407, 2, 0, false, 0); // 9,999,999,999

/// An amount of Canadian dollars: "CAD", at most two decimals, 0 to
/// 9,999,999,999.99.
pub fn cad_amount(currency: &str, amount: &str) -> Result<Decimal, &'static str> {
    if currency != CURRENCY {
        return Err("must be in CAD (currency_code \"CAD\")");
    }
    let parsed = decimal(amount).ok_or("amount must be a decimal number like \"85.00\"")?;
    if parsed.scale() > 2 {
        return Err("amount must have at most two decimals");
    }
    if parsed.is_sign_negative() && !parsed.is_zero() {
        return Err("amount must not be negative");
    }
    if parsed.trunc() > MAX_AMOUNT {
        return Err("amount must be at most 9999999999.99");
    }
    Ok(parsed)
}

/// A plain decimal: digits with an optional sign and one point; no
/// exponent, no spaces (`Decimal::from_str` accepts underscores).
pub fn decimal(value: &str) -> Option<Decimal> {
    let plain = !value.is_empty()
        && value.len() <= 20
        && value
            .bytes()
            .all(|byte| byte.is_ascii_digit() || matches!(byte, b'.' | b'-' | b'+'));
    if !plain {
        return None;
    }
    Decimal::from_str(value).ok()
}

/// The wire form of an amount or a percentage: two decimals.
pub fn two_decimals(value: Decimal) -> String {
    let mut value = value;
    value.rescale(2);
    value.to_string()
}
