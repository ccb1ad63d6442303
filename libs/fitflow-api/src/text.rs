//! String fields: no control characters, explicit limits in characters.
//!
//! Every string a request carries is checked here before it reaches a
//! database, a log or an audit event. NUL and every other Unicode control
//! character (general category Cc: U+0000–U+001F, U+007F–U+009F) are refused,
//! because they break logs, terminals, CSV exports and C-string consumers and
//! are never meant by a person. Free text (notes, descriptions) may hold tab,
//! CR and LF, since people paste paragraphs. Descriptions never echo the value,
//! which may be PHI.

use fitflow_error::Violations;
use uuid::Uuid;

/// What a string field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A single line (names, titles, codes): no control character at all.
    Line,
    /// Free text (notes, descriptions): tab, CR and LF allowed, no other control character.
    FreeText,
}

impl TextKind {
    fn allows(self, character: char) -> bool {
        if !character.is_control() {
            return true;
        }
        match self {
            TextKind::Line => false,
            TextKind::FreeText => matches!(character, '\t' | '\r' | '\n'),
        }
    }

    fn refusal(self) -> &'static str {
        match self {
            TextKind::Line => "must not contain control characters",
            TextKind::FreeText => {
                "must not contain control characters other than tab, carriage return and line feed"
            }
        }
    }
}

/// What is wrong with a string, if anything: a control character `kind` does
/// not allow, or more than `max_chars` characters. The empty string passes;
/// use [`required`] when a value must be given.
pub fn text_problem(value: &str, kind: TextKind, max_chars: usize) -> Option<String> {
    if !value.chars().all(|character| kind.allows(character)) {
        return Some(kind.refusal().to_owned());
    }
    if value.chars().count() > max_chars {
        return Some(format!("must be at most {max_chars} characters"));
    }
    None
}

/// Checks `value` of the field at path `field` (e.g. `client.first_name`);
/// records a violation and returns `false` when it is not acceptable text.
pub fn check_text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    kind: TextKind,
    max_chars: usize,
) -> bool {
    match text_problem(value, kind, max_chars) {
        Some(problem) => {
            violations.add(field, problem);
            false
        }
        None => true,
    }
}

/// Whether `c` draws nothing or reorders the text after it: bidirectional
/// overrides, embeddings and isolates, direction marks, the zero-width
/// space, word joiners and the byte-order mark. A name shown to other people
/// (a display, business or studio name) holding one can look exactly like
/// another, or show its text in another order than it is stored — in a
/// listing or a mail's subject alike. The zero-width joiner and non-joiner
/// are not among them: Persian, Indic scripts and emoji need them.
pub fn hides_or_reorders_text(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Records `is required` and returns `false` when `value` is empty or only
/// whitespace (a name of three spaces is no name).
pub fn required(violations: &mut Violations, field: &str, value: &str) -> bool {
    let given = !value.trim().is_empty();
    violations.check(given, field, "is required");
    given
}

/// Parses a required UUID field (any form the `uuid` crate reads);
/// records a violation when it is empty or not a UUID.
pub fn uuid(violations: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        violations.add(field, "is required");
        return None;
    }
    optional_uuid(violations, field, value)
}

/// Parses an optional UUID field: `None` when empty; records a violation
/// when it is given but not a UUID.
pub fn optional_uuid(violations: &mut Violations, field: &str, value: &str) -> Option<Uuid> {
    if value.is_empty() {
        return None;
    }
    let parsed = Uuid::try_parse(value).ok();
    violations.check(parsed.is_some(), field, "must be a UUID");
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: Violations) -> Vec<(String, String)> {
        match violations.into_result() {
            Ok(()) => Vec::new(),
            Err(error) => error
                .violations
                .into_iter()
                .map(|violation| (violation.field, violation.description))
                .collect(),
        }
    }

    #[test]
    fn nul_is_refused_in_every_kind_of_text() {
        for kind in [TextKind::Line, TextKind::FreeText] {
            assert!(text_problem("ab\0c", kind, 100).is_some(), "{kind:?}");
        }
    }

    #[test]
    fn every_control_character_is_refused_in_a_line() {
        for code in (0x00..=0x1F).chain(0x7F..=0x9F) {
            let character = char::from_u32(code).expect("a char");
            let value = format!("a{character}b");
            assert!(
                text_problem(&value, TextKind::Line, 100).is_some(),
                "U+{code:04X}"
            );
        }
    }

    #[test]
    fn free_text_allows_tab_cr_and_lf_but_no_other_control_character() {
        assert_eq!(
            text_problem("line one\r\n\tline two\n", TextKind::FreeText, 100),
            None
        );
        for refused in ['\u{7}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9F}', '\u{B}'] {
            let value = format!("a{refused}b");
            assert!(
                text_problem(&value, TextKind::FreeText, 100).is_some(),
                "{refused:?}"
            );
        }
        assert!(text_problem("a\tb", TextKind::Line, 100).is_some());
    }

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        // Five characters, ten bytes.
        let accented = "éééèè";
        assert_eq!(text_problem(accented, TextKind::Line, 5), None);
        assert_eq!(
            text_problem(accented, TextKind::Line, 4).as_deref(),
            Some("must be at most 4 characters")
        );
    }

    #[test]
    fn non_control_unicode_such_as_emoji_and_rtl_scripts_is_accepted() {
        assert_eq!(text_problem("Zoë 🏋️ مرحبا", TextKind::Line, 50), None);
    }

    #[test]
    fn a_violation_names_the_field_path_and_never_echoes_the_value() {
        let mut violations = Violations::new();
        assert!(!check_text(
            &mut violations,
            "client.notes",
            "diabetic\u{0}",
            TextKind::FreeText,
            100,
        ));
        assert!(check_text(
            &mut violations,
            "client.first_name",
            "Ana",
            TextKind::Line,
            100,
        ));
        let found = fields(violations);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "client.notes");
        assert!(!found[0].1.contains("diabetic"));
    }

    #[test]
    fn a_blank_required_field_is_refused_and_a_given_one_passes() {
        let mut violations = Violations::new();
        assert!(!required(&mut violations, "display_name", ""));
        assert!(!required(&mut violations, "title", " \t "));
        assert!(required(&mut violations, "studio", "Gym"));
        let found: Vec<_> = fields(violations).into_iter().map(|(f, _)| f).collect();
        assert_eq!(found, ["display_name", "title"]);
    }

    #[test]
    fn uuids_are_required_or_optional_and_garbage_is_a_violation() {
        let id = Uuid::new_v4();
        let mut violations = Violations::new();
        assert_eq!(
            uuid(&mut violations, "client_id", &id.to_string()),
            Some(id)
        );
        assert_eq!(optional_uuid(&mut violations, "studio_id", ""), None);
        assert_eq!(uuid(&mut violations, "trainer_id", ""), None);
        assert_eq!(optional_uuid(&mut violations, "parent_id", "nope"), None);
        let found: Vec<_> = fields(violations).into_iter().map(|(f, _)| f).collect();
        assert_eq!(found, ["trainer_id", "parent_id"]);
    }
}
