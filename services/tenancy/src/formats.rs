//! Canadian business formats, checked as pure functions: provinces and
//! postal codes, business and QST numbers, bank accounts, money and
//! percentages, time zones, contact details and free settings.

use std::collections::BTreeMap;

use fitflow_api::text::{TextKind, text_problem};
use fitflow_error::Violations;
use rust_decimal::Decimal;

/// Most entries in a settings map.
pub const MAX_SETTINGS: usize = 32;
/// Longest settings value.
const MAX_SETTING_VALUE_CHARS: usize = 1000;

pub use fitflow_api::canada::{Province, email, phone, postal_code};
pub use fitflow_api::money::{CURRENCY, cad_amount, decimal, two_decimals};

/// Whether the 9 digits of a business number pass its check digit (the
/// Luhn algorithm, as the CRA's business numbers use).
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, digit)| {
            let digit = u32::from(*digit);
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn digits_of(value: &str) -> Option<Vec<u8>> {
    value
        .bytes()
        .map(|byte| byte.is_ascii_digit().then(|| byte - b'0'))
        .collect()
}

/// A 9-digit business number that passes its check digit.
fn business_number_root(value: &str) -> bool {
    value.len() == 9 && digits_of(value).is_some_and(|digits| luhn_valid(&digits))
}

/// A CRA program account: the 9-digit business number, a two-letter
/// program identifier and a 4-digit reference ("123456782RT0001").
fn program_account(value: &str, program: Option<&str>) -> bool {
    if value.len() != 15 || !value.is_ascii() {
        return false;
    }
    let (root, rest) = value.split_at(9);
    let (identifier, reference) = rest.split_at(2);
    business_number_root(root)
        && identifier.bytes().all(|byte| byte.is_ascii_uppercase())
        && program.is_none_or(|program| identifier == program)
        && reference.bytes().all(|byte| byte.is_ascii_digit())
}

/// A GST/HST registration: the RT program account of a business number.
pub fn gst_hst_number(value: &str) -> Result<(), &'static str> {
    if program_account(value, Some("RT")) {
        Ok(())
    } else {
        Err(
            "must be a GST/HST program account like \"123456782RT0001\" (a valid business number, program RT)",
        )
    }
}

/// A studio's business number: 9 digits, or a full program account.
pub fn business_number(value: &str) -> Result<(), &'static str> {
    if business_number_root(value) || program_account(value, None) {
        Ok(())
    } else {
        Err("must be a 9-digit business number or a program account like \"123456782RT0001\"")
    }
}

/// A Quebec QST registration number: 10 digits, "TQ", 4 digits.
pub fn qst_number(value: &str) -> Result<(), &'static str> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes[..10].iter().all(u8::is_ascii_digit)
        && &bytes[10..12] == b"TQ"
        && bytes[12..].iter().all(u8::is_ascii_digit);
    if shape_ok {
        Ok(())
    } else {
        Err("must be a QST number like \"1234567890TQ0001\"")
    }
}

/// A string of exactly `count` ASCII digits (`count` a range).
fn all_digits(value: &str, count: std::ops::RangeInclusive<usize>) -> bool {
    count.contains(&value.len()) && value.bytes().all(|byte| byte.is_ascii_digit())
}

/// A Canadian bank account's numbers, checked field by field under `path`.
pub fn bank_account(
    violations: &mut Violations,
    path: &str,
    holder_name: &str,
    institution: &str,
    transit: &str,
    account: &str,
) {
    if holder_name.trim().is_empty() {
        violations.add(format!("{path}.holder_name"), "is required");
    } else if let Some(problem) = text_problem(holder_name, TextKind::Line, 100) {
        violations.add(format!("{path}.holder_name"), problem);
    }
    violations.check(
        all_digits(institution, 3..=3),
        &format!("{path}.institution_number"),
        "must be 3 digits",
    );
    violations.check(
        all_digits(transit, 5..=5),
        &format!("{path}.transit_number"),
        "must be 5 digits",
    );
    violations.check(
        all_digits(account, 7..=12),
        &format!("{path}.account_number"),
        "must be 7 to 12 digits",
    );
}

/// A percentage "0" to "100" with at most two decimals.
pub fn percentage(value: &str) -> Result<Decimal, &'static str> {
    let parsed = decimal(value).ok_or("must be a percentage like \"12.50\"")?;
    if parsed.scale() > 2 || parsed < Decimal::ZERO || parsed > Decimal::ONE_HUNDRED {
        return Err("must be a percentage from 0 to 100 with at most two decimals");
    }
    Ok(parsed)
}

/// An IANA time zone name known to the zone database.
pub fn time_zone(value: &str) -> Result<chrono_tz::Tz, &'static str> {
    value
        .parse::<chrono_tz::Tz>()
        .map_err(|_| "must be an IANA time zone like \"America/Toronto\"")
}

/// A website: an https:// URL without spaces, at most 200 characters.
pub fn website(value: &str) -> Result<(), &'static str> {
    let shape_ok = value.chars().count() <= 200
        && value.len() > "https://".len()
        && value.starts_with("https://")
        && !value
            .chars()
            .any(|character| character.is_whitespace() || character.is_control());
    if shape_ok {
        Ok(())
    } else {
        Err("must be an https:// URL of at most 200 characters")
    }
}

/// Free settings: at most [`MAX_SETTINGS`] entries, keys `[a-z0-9_.]{1,64}`,
/// values single lines of at most 1000 characters. Violations name the key's
/// position, never a value.
pub fn settings(violations: &mut Violations, path: &str, entries: &BTreeMap<&str, &str>) {
    if entries.len() > MAX_SETTINGS {
        violations.add(path, format!("must hold at most {MAX_SETTINGS} entries"));
        return;
    }
    for (key, value) in entries {
        let key_ok = (1..=64).contains(&key.len())
            && key.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_.".contains(&byte)
            });
        if !key_ok {
            violations.add(path, "keys must be 1 to 64 characters of a-z, 0-9, _ and .");
            continue;
        }
        if let Some(problem) = text_problem(value, TextKind::FreeText, MAX_SETTING_VALUE_CHARS) {
            violations.add(format!("{path}[{key}]"), problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gst_number_needs_a_valid_business_number_and_the_rt_program() {
        assert!(gst_hst_number("123456782RT0001").is_ok());
        assert!(
            gst_hst_number("123456789RT0001").is_err(),
            "check digit fails"
        );
        assert!(
            gst_hst_number("123456782RP0001").is_err(),
            "payroll program"
        );
        assert!(gst_hst_number("123456782RT001").is_err());
        assert!(gst_hst_number("123456782rt0001").is_err());
        assert!(gst_hst_number("１23456782RT0001").is_err());
        assert!(business_number("123456782").is_ok());
        assert!(business_number("123456782RC0001").is_ok());
        assert!(business_number("12345678").is_err());
    }

    #[test]
    fn qst_numbers_have_ten_digits_tq_and_four_digits() {
        assert!(qst_number("1234567890TQ0001").is_ok());
        assert!(qst_number("1234567890TQ001").is_err());
        assert!(qst_number("123456789XTQ0001").is_err());
        assert!(qst_number("1234567890RT0001").is_err());
    }

    #[test]
    fn amounts_are_cad_with_two_decimals_within_numeric_12_2() {
        assert_eq!(cad_amount("CAD", "85"), Ok(Decimal::from(85)));
        assert_eq!(two_decimals(Decimal::from(85)), "85.00");
        assert!(cad_amount("CAD", "85.005").is_err());
        assert!(cad_amount("USD", "85").is_err());
        assert!(cad_amount("CAD", "-1").is_err());
        assert!(cad_amount("CAD", "1e3").is_err());
        assert!(cad_amount("CAD", "1_000").is_err());
        assert!(cad_amount("CAD", "9999999999.99").is_ok());
        assert!(cad_amount("CAD", "10000000000").is_err());
        assert!(cad_amount("CAD", "").is_err());
    }

    #[test]
    fn percentages_run_from_zero_to_one_hundred() {
        assert!(percentage("0").is_ok());
        assert!(percentage("12.50").is_ok());
        assert!(percentage("100").is_ok());
        assert!(percentage("100.01").is_err());
        assert!(percentage("-0.01").is_err());
        assert!(percentage("1.005").is_err());
    }

    #[test]
    fn time_zones_come_from_the_iana_database() {
        assert!(time_zone("America/St_Johns").is_ok());
        assert!(time_zone("America/Regina").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(time_zone("").is_err());
    }

    #[test]
    fn contact_details_have_plausible_shapes() {
        assert!(phone("+1 (416) 555-0100").is_ok());
        assert!(phone("555").is_err());
        assert!(phone("416-555-0100 ext 2").is_err());
        assert!(email("desk@studio.ca").is_ok());
        assert!(email("desk@studio").is_err());
        assert!(email("a b@studio.ca").is_err());
        assert!(website("https://studio.ca").is_ok());
        assert!(website("http://studio.ca").is_err());
    }

    #[test]
    fn bank_accounts_are_checked_field_by_field() {
        let mut violations = Violations::new();
        bank_account(
            &mut violations,
            "bank_account",
            "Ana",
            "001",
            "12345",
            "1234567",
        );
        assert!(violations.is_empty());
        let mut violations = Violations::new();
        bank_account(&mut violations, "bank_account", "", "01", "1234a", "123");
        let error = violations.into_result().expect_err("four bad fields");
        assert_eq!(error.violations.len(), 4);
    }

    #[test]
    fn settings_keys_are_plain_and_values_free_of_control_characters() {
        let mut violations = Violations::new();
        settings(
            &mut violations,
            "settings",
            &BTreeMap::from([("reminder.hours", "24"), ("note", "line\nbreak")]),
        );
        assert!(violations.is_empty());
        let mut violations = Violations::new();
        settings(
            &mut violations,
            "settings",
            &BTreeMap::from([("Bad Key", "x"), ("ok", "nul\u{0}")]),
        );
        assert_eq!(
            violations
                .into_result()
                .expect_err("two bad entries")
                .violations
                .len(),
            2
        );
    }
}
