//! The clients service's rules as pure functions: who reaches a client at
//! which level, what a record may hold, how lookups are normalised, and when
//! a deleted client may be purged.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use fitflow_api::canada::Province;
use fitflow_auth::Principal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How far someone reaches a client, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    /// Read the record.
    Read,
    /// Read and change it.
    Write,
    /// Also share, delete and export it.
    Admin,
    /// The owner or a supervisor of the owner: also transfer it.
    Owner,
}

impl AccessLevel {
    /// The stored name of a share's level (`Owner` is never stored).
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Read => "read",
            AccessLevel::Write => "write",
            AccessLevel::Admin => "admin",
            AccessLevel::Owner => "owner",
        }
    }

    /// The level of a stored share.
    pub fn parse_share(value: &str) -> Option<Self> {
        match value {
            "read" => Some(AccessLevel::Read),
            "write" => Some(AccessLevel::Write),
            "admin" => Some(AccessLevel::Admin),
            _ => None,
        }
    }
}

/// The caller's level on a client owned by `owner` on which the caller holds
/// the share `share` (if any): acting for the owner (being them or above
/// them in their team) is ownership; otherwise the share decides.
pub fn caller_level(
    principal: &Principal,
    owner: Uuid,
    share: Option<AccessLevel>,
) -> Option<AccessLevel> {
    if principal.acts_for(owner) {
        Some(AccessLevel::Owner)
    } else {
        share
    }
}

/// What a caller may still learn when their level falls short of `needed`:
/// nothing at all without any level (the client "does not exist").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// No access at all: answer NOT_FOUND.
    Invisible,
    /// Some access, not enough: answer PERMISSION_DENIED.
    Insufficient,
}

/// Checks `level` against `needed`.
pub fn require(level: Option<AccessLevel>, needed: AccessLevel) -> Result<AccessLevel, Shortfall> {
    match level {
        None => Err(Shortfall::Invisible),
        Some(level) if level >= needed => Ok(level),
        Some(_) => Err(Shortfall::Insufficient),
    }
}

/// Where a client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Not given.
    #[default]
    Unspecified,
    /// Referred.
    Referral,
    /// Walked in.
    WalkIn,
    /// Online.
    Online,
}

impl Source {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Unspecified => "",
            Source::Referral => "referral",
            Source::WalkIn => "walk_in",
            Source::Online => "online",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Source::Unspecified,
            Source::Referral,
            Source::WalkIn,
            Source::Online,
        ]
        .into_iter()
        .find(|source| source.as_str() == value)
    }
}

/// A client's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Training now.
    #[default]
    Active,
    /// Paused.
    Inactive,
    /// Kept for the record.
    Archived,
}

impl Status {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Archived => "archived",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [Status::Active, Status::Inactive, Status::Archived]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// Someone to call in an emergency.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmergencyContact {
    /// Their name.
    pub name: String,
    /// Their phone.
    pub phone: String,
    /// How they relate to the client.
    pub relationship: String,
}

/// Health information, structured.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MedicalInfo {
    /// Conditions.
    pub conditions: Vec<String>,
    /// Medications.
    pub medications: Vec<String>,
    /// Allergies.
    pub allergies: Vec<String>,
}

/// A postal address (Canada).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Street, one or two lines.
    pub street: String,
    /// City.
    pub city: String,
    /// Province code ("ON").
    pub province: String,
    /// Normalised postal code ("K1A 0B1").
    pub postal_code: String,
}

impl Address {
    /// The province of the stored code.
    pub fn province(&self) -> Option<Province> {
        Province::from_code(&self.province)
    }
}

/// The recorded consent to collect health information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The consent text's version.
    pub text_version: String,
    /// When the client agreed.
    pub consent_time: DateTime<Utc>,
}

/// A client's record in the clear, as the service holds it while working.
/// Its `Debug` names the fields set, never their values.
#[derive(Clone, PartialEq, Default)]
pub struct ClientRecord {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Lower-cased email.
    pub email: Option<String>,
    /// Phone as given.
    pub phone: Option<String>,
    /// Date of birth.
    pub date_of_birth: Option<NaiveDate>,
    /// Emergency contact.
    pub emergency_contact: Option<EmergencyContact>,
    /// Health information.
    pub medical_info: Option<MedicalInfo>,
    /// Goals.
    pub goals: Option<String>,
    /// Address.
    pub address: Option<Address>,
    /// Preferences (not sealed: no health information).
    pub preferences: BTreeMap<String, String>,
    /// Source.
    pub source: Source,
    /// Status.
    pub status: Status,
    /// Consent to collect health information.
    pub consent: Option<Consent>,
}

impl std::fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRecord")
            .field("fields_set", &self.fields_set())
            .field("source", &self.source)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Every field of a record, as named in the contract's `update_mask`.
pub const FIELDS: [&str; 13] = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "emergency_contact",
    "medical_info",
    "goals",
    "address",
    "preferences",
    "source",
    "status",
    "health_consent",
];

impl ClientRecord {
    /// The names of the fields that hold a value.
    pub fn fields_set(&self) -> Vec<&'static str> {
        FIELDS
            .into_iter()
            .filter(|field| self.differs_from_empty(field))
            .collect()
    }

    fn differs_from_empty(&self, field: &str) -> bool {
        self.field_differs(&ClientRecord::default(), field)
    }

    /// Whether `field` holds a different value in `other`.
    pub fn field_differs(&self, other: &ClientRecord, field: &str) -> bool {
        match field {
            "first_name" => self.first_name != other.first_name,
            "last_name" => self.last_name != other.last_name,
            "email" => self.email != other.email,
            "phone" => self.phone != other.phone,
            "date_of_birth" => self.date_of_birth != other.date_of_birth,
            "emergency_contact" => self.emergency_contact != other.emergency_contact,
            "medical_info" => self.medical_info != other.medical_info,
            "goals" => self.goals != other.goals,
            "address" => self.address != other.address,
            "preferences" => self.preferences != other.preferences,
            "source" => self.source != other.source,
            "status" => self.status != other.status,
            "health_consent" => self.consent != other.consent,
            _ => false,
        }
    }

    /// Copies `field` from `other` into this record.
    pub fn take_field(&mut self, other: &ClientRecord, field: &str) {
        match field {
            "first_name" => self.first_name.clone_from(&other.first_name),
            "last_name" => self.last_name.clone_from(&other.last_name),
            "email" => self.email.clone_from(&other.email),
            "phone" => self.phone.clone_from(&other.phone),
            "date_of_birth" => self.date_of_birth = other.date_of_birth,
            "emergency_contact" => self.emergency_contact.clone_from(&other.emergency_contact),
            "medical_info" => self.medical_info.clone_from(&other.medical_info),
            "goals" => self.goals.clone_from(&other.goals),
            "address" => self.address.clone_from(&other.address),
            "preferences" => self.preferences.clone_from(&other.preferences),
            "source" => self.source = other.source,
            "status" => self.status = other.status,
            "health_consent" => self.consent.clone_from(&other.consent),
            _ => {}
        }
    }

    /// Withdrawn consent takes the health information with it.
    pub fn apply_consent_rule(&mut self) {
        if self.consent.is_none() {
            self.medical_info = None;
        }
    }

    /// Health information needs recorded consent.
    pub fn consent_missing(&self) -> bool {
        self.medical_info.is_some() && self.consent.is_none()
    }
}

/// The email as compared by lookups: trimmed and lower-cased.
pub fn normalized_email(value: &str) -> String {
    value.trim().to_lowercase()
}

/// The email naming the trainer a client is shared with, normalised as
/// identity compares it (trimmed, lower-cased), or why it is refused.
/// Control characters are refused before the trim, which would otherwise
/// drop one at either end without a word: hostile input is refused, never
/// repaired.
pub fn grantee_email(raw: &str) -> Result<String, &'static str> {
    if raw.chars().any(char::is_control) {
        return Err("must not hold control characters");
    }
    let email = raw.trim();
    if email.is_empty() {
        return Err("is required (or trainer_id)");
    }
    if email.chars().count() > 254 {
        return Err("must be at most 254 characters");
    }
    fitflow_api::canada::email(email)?;
    Ok(email.to_lowercase())
}

/// Whether `user_id` has a trainer profile, from what tenancy says they act
/// for (`GetActingFor`'s trainer ids): a trainer acts for themselves first,
/// so the list starts with the user exactly when they have a profile.
pub fn has_trainer_profile(user_id: Uuid, acting_for: &[String]) -> bool {
    acting_for
        .first()
        .is_some_and(|first| Uuid::try_parse(first).ok() == Some(user_id))
}

/// The phone as compared by lookups: its digits, without the North American
/// country code, so "+1 (613) 555-0100" and "613.555.0100" match.
pub fn normalized_phone(value: &str) -> String {
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('1') {
        Some(rest) if digits.len() == 11 => rest.to_owned(),
        _ => digits,
    }
}

/// A name as prefix search compares it: lower-case letters only, French and
/// most Latin accents removed ("Hélène-Marie O'Brien" → "helenemarieobrien").
pub fn folded_name(value: &str) -> String {
    let mut folded = String::with_capacity(value.len());
    for character in value.chars().flat_map(char::to_lowercase) {
        let plain = match character {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' => "a",
            'ç' => "c",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'í' | 'ì' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' => "o",
            'ú' | 'ù' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            'œ' => "oe",
            'æ' => "ae",
            'ß' => "ss",
            other if other.is_alphabetic() => {
                folded.push(other);
                continue;
            }
            _ => continue,
        };
        folded.push_str(plain);
    }
    folded
}

/// Shortest name prefix a search takes and indexes.
pub const MIN_PREFIX: usize = 3;
/// Longest name prefix indexed (longer searches use their first 12 letters,
/// then the service compares whole names).
pub const MAX_PREFIX: usize = 12;

/// The folded prefixes (3 to 12 letters) of a client's first and last
/// names that prefix search indexes, without repeats.
pub fn name_prefixes(first_name: &str, last_name: &str) -> Vec<String> {
    let mut prefixes = Vec::new();
    for name in [folded_name(first_name), folded_name(last_name)] {
        let characters: Vec<char> = name.chars().collect();
        for length in MIN_PREFIX..=MAX_PREFIX.min(characters.len()) {
            let prefix: String = characters[..length].iter().collect();
            if !prefixes.contains(&prefix) {
                prefixes.push(prefix);
            }
        }
    }
    prefixes
}

/// The indexed form of a search's prefix: folded and cut to 12 letters;
/// `None` when fewer than 3 letters remain.
pub fn search_prefix(query: &str) -> Option<String> {
    let folded = folded_name(query);
    let characters: Vec<char> = folded.chars().collect();
    (characters.len() >= MIN_PREFIX).then(|| {
        characters[..MAX_PREFIX.min(characters.len())]
            .iter()
            .collect()
    })
}

/// Whether a client's names match a search (what the truncated index only
/// suggests): either folded name starts with the folded query.
pub fn name_matches(first_name: &str, last_name: &str, query: &str) -> bool {
    let query = folded_name(query);
    !query.is_empty()
        && (folded_name(first_name).starts_with(&query)
            || folded_name(last_name).starts_with(&query))
}

/// Why a purge is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeRefusal {
    /// The client is not soft-deleted.
    NotDeleted,
    /// Deleted too recently.
    RetentionNotElapsed,
}

/// Whether a client deleted at `deleted_at` may be purged at `now` after
/// `retention`.
pub fn purge_allowed(
    deleted_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Result<(), PurgeRefusal> {
    match deleted_at {
        None => Err(PurgeRefusal::NotDeleted),
        Some(at) if now - at < retention => Err(PurgeRefusal::RetentionNotElapsed),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grantee_email_is_trimmed_and_lower_cased_and_hostile_ones_are_refused() {
        assert_eq!(
            grantee_email("  Gus.Trainer@Example.CA ").as_deref(),
            Ok("gus.trainer@example.ca")
        );
        for hostile in [
            "gus@example.ca\u{0}",
            "\u{b}gus@example.ca",
            "gus@example.ca\u{85}",
            "gus\r\n@example.ca",
        ] {
            assert_eq!(
                grantee_email(hostile),
                Err("must not hold control characters"),
                "{hostile:?}"
            );
        }
        assert_eq!(grantee_email("   "), Err("is required (or trainer_id)"));
        assert_eq!(grantee_email("gus"), Err("must be an email address"));
        assert_eq!(
            grantee_email("gus@localhost"),
            Err("must be an email address")
        );
        assert_eq!(
            grantee_email("g us@example.ca"),
            Err("must be an email address")
        );
        let long = format!("{}@example.ca", "g".repeat(250));
        assert_eq!(grantee_email(&long), Err("must be at most 254 characters"));
    }

    #[test]
    fn only_a_user_tenancy_lists_first_among_those_they_act_for_has_a_trainer_profile() {
        let user = Uuid::from_u128(7);
        let other = Uuid::from_u128(8);
        assert!(has_trainer_profile(user, &[user.to_string()]));
        assert!(has_trainer_profile(
            user,
            &[user.to_string(), other.to_string()]
        ));
        // No profile: tenancy lists nothing (a studio owner, a new account).
        assert!(!has_trainer_profile(user, &[]));
        // Someone else first is not the user's profile.
        assert!(!has_trainer_profile(user, &[other.to_string()]));
        assert!(!has_trainer_profile(user, &["not-a-uuid".to_owned()]));
    }

    fn principal(user: Uuid, supervised: Vec<Uuid>) -> Principal {
        Principal {
            user_id: user,
            session_id: Uuid::nil(),
            roles: Vec::new(),
            supervised_trainer_ids: supervised,
            amr: Vec::new(),
            studio_ids: Vec::new(),
            claims_truncated: false,
            claims_partial: false,
        }
    }

    #[test]
    fn the_owner_and_their_supervisors_hold_owner_access_whatever_the_share() {
        let owner = Uuid::from_u128(1);
        let lead = Uuid::from_u128(2);
        assert_eq!(
            caller_level(&principal(owner, vec![]), owner, None),
            Some(AccessLevel::Owner)
        );
        assert_eq!(
            caller_level(
                &principal(lead, vec![owner]),
                owner,
                Some(AccessLevel::Read)
            ),
            Some(AccessLevel::Owner)
        );
    }

    #[test]
    fn a_grantee_holds_exactly_their_share_and_a_stranger_nothing() {
        let owner = Uuid::from_u128(1);
        let other = principal(Uuid::from_u128(3), vec![]);
        assert_eq!(
            caller_level(&other, owner, Some(AccessLevel::Write)),
            Some(AccessLevel::Write)
        );
        assert_eq!(caller_level(&other, owner, None), None);
    }

    #[test]
    fn a_read_grantee_writing_is_insufficient_and_a_stranger_sees_nothing() {
        assert_eq!(
            require(Some(AccessLevel::Read), AccessLevel::Write),
            Err(Shortfall::Insufficient)
        );
        assert_eq!(require(None, AccessLevel::Read), Err(Shortfall::Invisible));
        assert_eq!(
            require(Some(AccessLevel::Owner), AccessLevel::Admin),
            Ok(AccessLevel::Owner)
        );
    }

    #[test]
    fn phones_match_with_or_without_the_country_code_and_punctuation() {
        assert_eq!(normalized_phone("+1 (613) 555-0100"), "6135550100");
        assert_eq!(normalized_phone("613.555.0100"), "6135550100");
        assert_eq!(normalized_phone("+44 20 7946 0958"), "442079460958");
    }

    #[test]
    fn names_fold_accents_case_and_punctuation() {
        assert_eq!(folded_name("Hélène-Marie O'Brien"), "helenemarieobrien");
        assert_eq!(folded_name("ÇÉLINE"), "celine");
    }

    #[test]
    fn prefixes_cover_three_to_twelve_letters_of_each_name() {
        let prefixes = name_prefixes("Zoé", "Tremblay-Gagnon");
        assert!(prefixes.contains(&"zoe".to_owned()));
        assert!(prefixes.contains(&"tre".to_owned()));
        assert!(prefixes.contains(&"tremblaygagn".to_owned()));
        assert!(
            !prefixes
                .iter()
                .any(|prefix| prefix.chars().count() > MAX_PREFIX)
        );
        assert!(
            !prefixes
                .iter()
                .any(|prefix| prefix.chars().count() < MIN_PREFIX)
        );
        assert_eq!(prefixes.len(), 1 + 10);
    }

    #[test]
    fn a_search_needs_three_letters_and_is_cut_to_twelve() {
        assert_eq!(search_prefix("é-l"), None);
        assert_eq!(search_prefix("Hél"), Some("hel".to_owned()));
        assert_eq!(
            search_prefix("Tremblay-Gagnon").as_deref(),
            Some("tremblaygagn")
        );
        assert!(name_matches("Hélène", "Roy", "hele"));
        assert!(name_matches("Ana", "Tremblay-Gagnon", "tremblay-gagnon"));
        assert!(!name_matches("Ana", "Tremblay", "tremblay-gagnon"));
    }

    #[test]
    fn withdrawn_consent_erases_health_information() {
        let mut record = ClientRecord {
            medical_info: Some(MedicalInfo::default()),
            ..ClientRecord::default()
        };
        assert!(record.consent_missing());
        record.apply_consent_rule();
        assert!(record.medical_info.is_none());
        assert!(!record.consent_missing());
    }

    #[test]
    fn a_client_is_purged_only_after_deletion_and_the_retention_period() {
        let now = Utc::now();
        let retention = chrono::Duration::days(30);
        assert_eq!(
            purge_allowed(None, now, retention),
            Err(PurgeRefusal::NotDeleted)
        );
        assert_eq!(
            purge_allowed(Some(now - chrono::Duration::days(29)), now, retention),
            Err(PurgeRefusal::RetentionNotElapsed)
        );
        assert_eq!(
            purge_allowed(Some(now - chrono::Duration::days(31)), now, retention),
            Ok(())
        );
    }

    #[test]
    fn a_record_debug_names_fields_but_never_values() {
        let record = ClientRecord {
            first_name: "Zoé".to_owned(),
            email: Some("zoe@example.ca".to_owned()),
            ..ClientRecord::default()
        };
        let printed = format!("{record:?}");
        assert!(printed.contains("first_name"));
        assert!(!printed.contains("Zoé") && !printed.contains("zoe@"));
    }
}
