//! Canadian contact formats shared by every service that stores an address
//! or a contact: provinces and territories, postal codes (checked against the
//! province), phone numbers and email addresses. Pure functions.

/// A Canadian province or territory, by its two-letter code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Province {
    /// Alberta.
    Ab,
    /// British Columbia.
    Bc,
    /// Manitoba.
    Mb,
    /// New Brunswick.
    Nb,
    /// Newfoundland and Labrador.
    Nl,
    /// Nova Scotia.
    Ns,
    /// Northwest Territories.
    Nt,
    /// Nunavut.
    Nu,
    /// Ontario.
    On,
    /// Prince Edward Island.
    Pe,
    /// Quebec.
    Qc,
    /// Saskatchewan.
    Sk,
    /// Yukon.
    Yt,
}

/// Every province, in the order of `fitflow.type.v1.Province` (1..=13).
const PROVINCES: [Province; 13] = [
    Province::Ab,
    Province::Bc,
    Province::Mb,
    Province::Nb,
    Province::Nl,
    Province::Ns,
    Province::Nt,
    Province::Nu,
    Province::On,
    Province::Pe,
    Province::Qc,
    Province::Sk,
    Province::Yt,
];

impl Province {
    /// The two-letter code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            Province::Ab => "AB",
            Province::Bc => "BC",
            Province::Mb => "MB",
            Province::Nb => "NB",
            Province::Nl => "NL",
            Province::Ns => "NS",
            Province::Nt => "NT",
            Province::Nu => "NU",
            Province::On => "ON",
            Province::Pe => "PE",
            Province::Qc => "QC",
            Province::Sk => "SK",
            Province::Yt => "YT",
        }
    }

    /// The province of a `fitflow.type.v1.Province` value; `None` for 0 or unknown.
    pub fn from_proto(value: i32) -> Option<Self> {
        let index = usize::try_from(value).ok()?.checked_sub(1)?;
        PROVINCES.get(index).copied()
    }

    /// The `fitflow.type.v1.Province` value.
    pub fn to_proto(self) -> i32 {
        let index = PROVINCES
            .iter()
            .position(|province| *province == self)
            .unwrap_or_default();
        i32::try_from(index + 1).unwrap_or_default()
    }

    /// The province of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        PROVINCES
            .iter()
            .copied()
            .find(|province| province.code() == code)
    }

    /// The first letters of its postal codes (Canada Post's forward sortation
    /// areas): X serves both the Northwest Territories and Nunavut.
    fn postal_letters(self) -> &'static [char] {
        match self {
            Province::Nl => &['A'],
            Province::Ns => &['B'],
            Province::Pe => &['C'],
            Province::Nb => &['E'],
            Province::Qc => &['G', 'H', 'J'],
            Province::On => &['K', 'L', 'M', 'N', 'P'],
            Province::Mb => &['R'],
            Province::Sk => &['S'],
            Province::Ab => &['T'],
            Province::Bc => &['V'],
            Province::Nt | Province::Nu => &['X'],
            Province::Yt => &['Y'],
        }
    }
}

/// Letters Canada Post never uses in a postal code (they read like digits
/// or each other).
const NEVER_IN_POSTAL_CODES: [char; 6] = ['D', 'F', 'I', 'O', 'Q', 'U'];

/// The normalised postal code ("A1A 1A1") of `value` in `province`, or why not.
pub fn postal_code(value: &str, province: Option<Province>) -> Result<String, &'static str> {
    let compact: String = value
        .chars()
        .filter(|character| *character != ' ')
        .map(|character| character.to_ascii_uppercase())
        .collect();
    let characters: Vec<char> = compact.chars().collect();
    let shape_ok = characters.len() == 6
        && characters.iter().enumerate().all(|(position, character)| {
            if position % 2 == 0 {
                character.is_ascii_uppercase() && !NEVER_IN_POSTAL_CODES.contains(character)
            } else {
                character.is_ascii_digit()
            }
        });
    if !shape_ok || value.chars().filter(|character| *character == ' ').count() > 1 {
        return Err("must be a Canadian postal code like \"K1A 0B1\"");
    }
    if let Some(province) = province
        && !province.postal_letters().contains(&characters[0])
    {
        return Err("does not belong to the address's province");
    }
    Ok(format!("{} {}", &compact[..3], &compact[3..]))
}

/// A phone number: digits with an optional leading "+", and spaces, dashes,
/// dots or parentheses; 7 to 15 digits.
pub fn phone(value: &str) -> Result<(), &'static str> {
    let body = value.strip_prefix('+').unwrap_or(value);
    let shape_ok = value.chars().count() <= 30
        && body
            .chars()
            .all(|character| character.is_ascii_digit() || " -.()".contains(character));
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if shape_ok && (7..=15).contains(&digits) {
        Ok(())
    } else {
        Err(
            "must be a phone number: 7 to 15 digits, optionally with +, spaces, dashes, dots or parentheses",
        )
    }
}

/// An email address, loosely: one "@", a non-empty local part, a domain with
/// a dot, no spaces or control characters, at most 254 characters.
pub fn email(value: &str) -> Result<(), &'static str> {
    let shape_ok = value.chars().count() <= 254
        && !value
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if shape_ok {
        Ok(())
    } else {
        Err("must be an email address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_province_round_trips_through_its_proto_value_and_code() {
        for province in PROVINCES {
            assert_eq!(Province::from_proto(province.to_proto()), Some(province));
            assert_eq!(Province::from_code(province.code()), Some(province));
        }
        assert_eq!(Province::from_proto(0), None);
        assert_eq!(Province::from_proto(14), None);
        assert_eq!(Province::from_proto(-1), None);
    }

    #[test]
    fn postal_codes_are_normalised_and_must_belong_to_the_province() {
        assert_eq!(
            postal_code("k1a0b1", Some(Province::On)).as_deref(),
            Ok("K1A 0B1")
        );
        assert_eq!(
            postal_code("H2X 1Y4", Some(Province::Qc)).as_deref(),
            Ok("H2X 1Y4")
        );
        assert_eq!(
            postal_code("X0A 0H0", Some(Province::Nu)).as_deref(),
            Ok("X0A 0H0")
        );
        assert!(postal_code("K1A 0B1", Some(Province::Qc)).is_err());
        assert!(postal_code("D1A 0B1", None).is_err(), "D is never used");
        assert!(postal_code("K1A 0B", None).is_err());
        assert!(postal_code("K1A  0B1", None).is_err());
        assert!(postal_code("1KA 0B1", None).is_err());
        assert!(postal_code("K1A\u{0}0B1", None).is_err());
    }
}
