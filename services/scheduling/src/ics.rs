//! iCalendar (RFC 5545) text of a trainer's schedule, as pure functions:
//! TEXT escaping (§3.3.11), line folding at 75 octets without splitting a
//! UTF-8 character (§3.1), CRLF line endings, UTC date-times (§3.3.5, form
//! 2) and one VEVENT per appointment.
//!
//! Only what a calendar needs and may travel to another system goes in: no
//! client, no location details, no price.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The longest line, in octets, not counting its CRLF (RFC 5545 §3.1).
pub const MAX_LINE_OCTETS: usize = 75;
/// Ends every line, the last included.
pub const CRLF: &str = "\r\n";
/// Who made the file (PRODID).
pub const PRODUCT_ID: &str = "-//FitFlow//Scheduling//EN";

/// One appointment as a calendar event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The appointment; its UID is `<id>@fitflow`.
    pub appointment_id: Uuid,
    /// When it starts.
    pub start: DateTime<Utc>,
    /// When it ends.
    pub end: DateTime<Utc>,
    /// What it is (the class type's name), unescaped.
    pub summary: String,
    /// Cancelled (STATUS:CANCELLED) or not (CONFIRMED).
    pub cancelled: bool,
    /// Grows with each change of the appointment (SEQUENCE).
    pub sequence: u32,
}

/// `value` as an RFC 5545 TEXT value: backslash, semicolon and comma
/// escaped with a backslash, a line break (CRLF, LF or a lone CR) as `\n`.
/// Other control characters, which TEXT cannot hold, are dropped (tab
/// stays: TEXT allows it).
pub fn escape_text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let mut characters = value.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\r' => {
                characters.next_if_eq(&'\n');
                escaped.push_str("\\n");
            }
            '\n' => escaped.push_str("\\n"),
            '\t' => escaped.push('\t'),
            control if control.is_control() => {}
            other => escaped.push(other),
        }
    }
    escaped
}

/// A content line folded (§3.1): at most [`MAX_LINE_OCTETS`] octets per
/// physical line, each continuation starting with one space (which counts),
/// split only between characters, every physical line ending in CRLF.
pub fn fold(line: &str) -> String {
    let mut folded = String::with_capacity(line.len() + line.len() / 64 * 3 + 2);
    let mut octets = 0;
    for character in line.chars() {
        let width = character.len_utf8();
        if octets + width > MAX_LINE_OCTETS {
            folded.push_str(CRLF);
            folded.push(' ');
            octets = 1;
        }
        folded.push(character);
        octets += width;
    }
    folded.push_str(CRLF);
    folded
}

/// A UTC DATE-TIME value, `YYYYMMDDTHHMMSSZ`.
pub fn utc_date_time(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The whole `.ics` file: a VCALENDAR (PUBLISH) holding one VEVENT per
/// event, in the given order, stamped `stamp` (DTSTAMP: when the file was
/// made).
pub fn calendar(events: &[Event], stamp: DateTime<Utc>) -> String {
    let stamp = utc_date_time(stamp);
    let mut text = String::with_capacity(256 + events.len() * 256);
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        &format!("PRODID:{PRODUCT_ID}"),
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ] {
        text.push_str(&fold(line));
    }
    for event in events {
        let status = if event.cancelled {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        for line in [
            "BEGIN:VEVENT".to_owned(),
            format!("UID:{}@fitflow", event.appointment_id),
            format!("DTSTAMP:{stamp}"),
            format!("DTSTART:{}", utc_date_time(event.start)),
            format!("DTEND:{}", utc_date_time(event.end)),
            format!("SEQUENCE:{}", event.sequence),
            format!("SUMMARY:{}", escape_text(&event.summary)),
            format!("STATUS:{status}"),
            "END:VEVENT".to_owned(),
        ] {
            text.push_str(&fold(&line));
        }
    }
    text.push_str(&fold("END:VCALENDAR"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    /// The physical lines of `text`, each checked to end in CRLF.
    fn physical_lines(text: &str) -> Vec<&str> {
        assert!(text.ends_with(CRLF), "the last line ends in CRLF");
        let lines: Vec<&str> = text[..text.len() - 2].split(CRLF).collect();
        for line in &lines {
            assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
        }
        lines
    }

    /// Undoes folding (§3.1: a CRLF followed by one space goes).
    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "")
    }

    #[test]
    fn backslashes_semicolons_commas_and_line_breaks_are_escaped() {
        assert_eq!(escape_text("a\\b;c,d"), "a\\\\b\\;c\\,d");
        assert_eq!(
            escape_text("one\ntwo\r\nthree\rfour"),
            "one\\ntwo\\nthree\\nfour"
        );
        assert_eq!(
            escape_text("Yoga: flow & \"stretch\""),
            "Yoga: flow & \"stretch\""
        );
        // An escaped backslash before a comma stays two escapes.
        assert_eq!(escape_text("\\,"), "\\\\\\,");
    }

    #[test]
    fn control_characters_other_than_tab_are_dropped_and_other_text_is_kept() {
        assert_eq!(escape_text("a\u{0}b\u{7}c\td"), "abc\td");
        assert_eq!(escape_text("Étirements 🧘 Ω"), "Étirements 🧘 Ω");
    }

    #[test]
    fn a_short_line_is_not_folded_and_ends_in_crlf() {
        assert_eq!(fold("VERSION:2.0"), "VERSION:2.0\r\n");
        let exactly = "X".repeat(MAX_LINE_OCTETS);
        assert_eq!(fold(&exactly), format!("{exactly}\r\n"));
    }

    #[test]
    fn a_long_line_is_folded_at_seventy_five_octets_counting_the_leading_space() {
        let line = format!("SUMMARY:{}", "a".repeat(200));
        let folded = fold(&line);
        let lines = physical_lines(&folded);
        assert_eq!(lines[0].len(), MAX_LINE_OCTETS);
        for continuation in &lines[1..] {
            assert!(continuation.starts_with(' '));
            assert!(continuation.len() <= MAX_LINE_OCTETS);
        }
        assert_eq!(lines[1].len(), MAX_LINE_OCTETS);
        assert_eq!(unfold(&folded), format!("{line}\r\n"));
    }

    #[test]
    fn folding_never_splits_a_multi_byte_character() {
        // 8 ASCII octets, then four-octet emoji and two-octet letters: no
        // 75-octet boundary falls between characters by chance.
        let line = format!("SUMMARY:{}", "🧘é".repeat(40));
        let folded = fold(&line);
        let lines = physical_lines(&folded);
        assert!(lines.len() > 3);
        for physical in &lines {
            // Each physical line is valid UTF-8 on its own (a &str slice of
            // whole characters) and within the limit.
            assert!(physical.len() <= MAX_LINE_OCTETS, "{}", physical.len());
            assert!(std::str::from_utf8(physical.as_bytes()).is_ok());
        }
        // Lines are filled as far as a whole character fits.
        assert!(lines[0].len() > MAX_LINE_OCTETS - 4);
        assert_eq!(unfold(&folded), format!("{line}\r\n"));
    }

    #[test]
    fn a_calendar_has_crlf_lines_and_one_event_per_appointment() {
        let stamp = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 5).unwrap();
        let id = Uuid::from_u128(0x0195_0000_0000_7000_8000_0000_0000_0001);
        let events = [
            Event {
                appointment_id: id,
                start: Utc.with_ymd_and_hms(2027, 3, 8, 12, 0, 0).unwrap(),
                end: Utc.with_ymd_and_hms(2027, 3, 8, 13, 0, 0).unwrap(),
                summary: "Strength, core; \\ more".into(),
                cancelled: false,
                sequence: 0,
            },
            Event {
                appointment_id: Uuid::nil(),
                start: Utc.with_ymd_and_hms(2027, 3, 15, 11, 0, 0).unwrap(),
                end: Utc.with_ymd_and_hms(2027, 3, 15, 12, 30, 0).unwrap(),
                summary: "Yoga".into(),
                cancelled: true,
                sequence: 2,
            },
        ];
        let text = calendar(&events, stamp);
        let lines = physical_lines(&text);
        assert_eq!(lines.first(), Some(&"BEGIN:VCALENDAR"));
        assert_eq!(lines.last(), Some(&"END:VCALENDAR"));
        assert!(lines.contains(&"VERSION:2.0"));
        assert!(lines.contains(&"PRODID:-//FitFlow//Scheduling//EN"));
        assert_eq!(lines.iter().filter(|l| **l == "BEGIN:VEVENT").count(), 2);
        assert_eq!(lines.iter().filter(|l| **l == "END:VEVENT").count(), 2);
        let first: Vec<&str> = lines
            .iter()
            .skip_while(|line| **line != "BEGIN:VEVENT")
            .take(9)
            .copied()
            .collect();
        assert_eq!(
            first,
            [
                "BEGIN:VEVENT",
                &format!("UID:{id}@fitflow"),
                "DTSTAMP:20270301T120005Z",
                "DTSTART:20270308T120000Z",
                "DTEND:20270308T130000Z",
                "SEQUENCE:0",
                "SUMMARY:Strength\\, core\\; \\\\ more",
                "STATUS:CONFIRMED",
                "END:VEVENT",
            ]
        );
        assert!(lines.contains(&"STATUS:CANCELLED"));
        assert!(lines.contains(&"DTEND:20270315T123000Z"));
        assert!(lines.contains(&"SEQUENCE:2"));
    }

    #[test]
    fn a_calendar_without_events_holds_its_header_and_end_only() {
        let stamp = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let text = calendar(&[], stamp);
        assert_eq!(
            text,
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//FitFlow//Scheduling//EN\r\n\
             CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nEND:VCALENDAR\r\n"
        );
    }
}
