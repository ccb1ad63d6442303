//! The letters themselves, as pure functions: subject and text of each
//! kind, in English, or in French for a client whose address is in Quebec.
//!
//! A letter says what happened, which class (its type's name), when (the
//! local date and time with the zone named) and where (at the studio,
//! online, at the client's place) — never a price, a note, a location's
//! details or anything of the client's health. The subject is plain text;
//! the platform mailer encodes it (RFC 2047) whatever the class is called.

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use chrono_tz::Tz;

use super::Kind;
use crate::domain::Location;

/// The product name at the head of every subject.
const PRODUCT: &str = "FitFlow";

/// The language of a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// English, the default.
    English,
    /// French, for a client whose address is in Quebec.
    French,
}

impl Language {
    /// French when the client's address is in Quebec, else English.
    pub fn for_province(province: Option<fitflow_proto::types::Province>) -> Self {
        if province == Some(fitflow_proto::types::Province::Qc) {
            Language::French
        } else {
            Language::English
        }
    }
}

/// What one letter tells.
#[derive(Debug, Clone)]
pub struct Letter {
    /// What happened.
    pub kind: Kind,
    /// The client's language.
    pub language: Language,
    /// The client's first name, for the greeting (may be empty).
    pub first_name: String,
    /// The class type's name.
    pub class_name: String,
    /// When the session starts.
    pub start: DateTime<Utc>,
    /// The trainer's time zone.
    pub zone: Tz,
    /// Where it happens.
    pub location: Location,
    /// For the confirmation of a weekly series: how many sessions it holds.
    pub series_sessions: Option<i64>,
}

impl Letter {
    /// The local date and time with the zone named: "Wednesday 10 March 2027
    /// at 10:00 EDT (America/Toronto)", "mercredi 10 mars 2027 à 10 h 00 EDT
    /// (America/Toronto)".
    pub fn when(&self) -> String {
        let local = self.start.with_timezone(&self.zone);
        let weekday = |french| fitflow_api::prose::weekday_name(local.weekday(), french);
        let month = |french| fitflow_api::prose::month_name(local.month0(), french);
        let abbreviation = local.format("%Z").to_string();
        let zone = self.zone.name();
        match self.language {
            Language::English => format!(
                "{} {} {} {} at {:02}:{:02} {abbreviation} ({zone})",
                weekday(false),
                local.day(),
                month(false),
                local.year(),
                local.hour(),
                local.minute(),
            ),
            Language::French => format!(
                "{} {} {} {} à {} h {:02} {abbreviation} ({zone})",
                weekday(true),
                local.day(),
                month(true),
                local.year(),
                local.hour(),
                local.minute(),
            ),
        }
    }

    /// The subject line.
    pub fn subject(&self) -> String {
        let class = &self.class_name;
        let when = self.when();
        match (self.language, self.kind) {
            (Language::English, Kind::Booked) => {
                format!("{PRODUCT}: booking confirmed, {class} on {when}")
            }
            (Language::English, Kind::Promoted) => {
                format!("{PRODUCT}: a place opened up for you, {class} on {when}")
            }
            (Language::English, Kind::Cancelled) => {
                format!("{PRODUCT}: cancelled, {class} on {when}")
            }
            (Language::English, Kind::Reminder) => {
                format!("{PRODUCT}: reminder, {class} on {when}")
            }
            (Language::French, Kind::Booked) => {
                format!("{PRODUCT} : réservation confirmée, {class} le {when}")
            }
            (Language::French, Kind::Promoted) => {
                format!("{PRODUCT} : une place s'est libérée pour vous, {class} le {when}")
            }
            (Language::French, Kind::Cancelled) => {
                format!("{PRODUCT} : annulation, {class} le {when}")
            }
            (Language::French, Kind::Reminder) => {
                format!("{PRODUCT} : rappel, {class} le {when}")
            }
        }
    }

    /// The text.
    pub fn text(&self) -> String {
        match self.language {
            Language::English => self.english(),
            Language::French => self.french(),
        }
    }

    fn english(&self) -> String {
        let class = &self.class_name;
        let when = self.when();
        let greeting = if self.first_name.is_empty() {
            "Hello,".to_owned()
        } else {
            format!("Hello {},", self.first_name)
        };
        let news = match self.kind {
            Kind::Booked => format!("Your place in {class} on {when} is booked."),
            Kind::Promoted => format!(
                "A place opened up in {class} on {when}: you were on the waitlist, \
                 and the place is now yours."
            ),
            Kind::Cancelled => format!("Your place in {class} on {when} is cancelled."),
            Kind::Reminder => format!("A reminder: {class} is coming up on {when}."),
        };
        let series = match self.series_sessions {
            Some(sessions) if sessions > 1 && self.kind == Kind::Booked => format!(
                "\nIt is the first of {sessions} weekly sessions at the same time; \
                 each comes with a reminder ahead of it.\n"
            ),
            _ => String::new(),
        };
        let place = match self.location {
            Location::Studio => "at the studio",
            Location::Online => "online",
            Location::ClientLocation => "at your place",
        };
        let after = match self.kind {
            Kind::Cancelled => "If you did not expect this, please contact your trainer.",
            Kind::Booked | Kind::Promoted | Kind::Reminder => {
                "If you cannot come, please tell your trainer as early as you can."
            }
        };
        format!(
            "{greeting}\n\n{news}\n{series}\nWhere: {place}.\n\n{after}\n\n\
             This message was sent by {PRODUCT} on behalf of your trainer; \
             replies to it are not read.\n"
        )
    }

    fn french(&self) -> String {
        let class = &self.class_name;
        let when = self.when();
        let greeting = if self.first_name.is_empty() {
            "Bonjour,".to_owned()
        } else {
            format!("Bonjour {},", self.first_name)
        };
        let news = match self.kind {
            Kind::Booked => format!("Votre place au cours {class} le {when} est réservée."),
            Kind::Promoted => format!(
                "Une place s'est libérée au cours {class} le {when} : vous étiez sur la \
                 liste d'attente, et la place est maintenant à vous."
            ),
            Kind::Cancelled => format!("Votre place au cours {class} le {when} est annulée."),
            Kind::Reminder => format!("Rappel : le cours {class} a lieu le {when}."),
        };
        let series = match self.series_sessions {
            Some(sessions) if sessions > 1 && self.kind == Kind::Booked => format!(
                "\nC'est la première de {sessions} séances hebdomadaires à la même heure; \
                 chacune est précédée d'un rappel.\n"
            ),
            _ => String::new(),
        };
        let place = match self.location {
            Location::Studio => "au studio",
            Location::Online => "en ligne",
            Location::ClientLocation => "chez vous",
        };
        let after = match self.kind {
            Kind::Cancelled => {
                "Si vous ne vous y attendiez pas, veuillez communiquer avec votre entraîneur."
            }
            Kind::Booked | Kind::Promoted | Kind::Reminder => {
                "Si vous ne pouvez pas venir, veuillez prévenir votre entraîneur le plus tôt \
                 possible."
            }
        };
        format!(
            "{greeting}\n\n{news}\n{series}\nLieu : {place}.\n\n{after}\n\n\
             Ce message a été envoyé par {PRODUCT} au nom de votre entraîneur; \
             les réponses ne sont pas lues.\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn letter(kind: Kind, language: Language) -> Letter {
        Letter {
            kind,
            language,
            first_name: "Zoé".to_owned(),
            class_name: "Strength".to_owned(),
            // 10:00 in Toronto: standard time (EST) until 14 March 2027.
            start: Utc.with_ymd_and_hms(2027, 3, 10, 15, 0, 0).unwrap(),
            zone: chrono_tz::America::Toronto,
            location: Location::Studio,
            series_sessions: None,
        }
    }

    #[test]
    fn the_time_is_local_with_the_zone_named() {
        let english = letter(Kind::Booked, Language::English);
        assert_eq!(
            english.when(),
            "Wednesday 10 March 2027 at 10:00 EST (America/Toronto)"
        );
        let french = letter(Kind::Booked, Language::French);
        assert_eq!(
            french.when(),
            "mercredi 10 mars 2027 à 10 h 00 EST (America/Toronto)"
        );
        let newfoundland = Letter {
            zone: chrono_tz::America::St_Johns,
            ..english
        };
        assert_eq!(
            newfoundland.when(),
            "Wednesday 10 March 2027 at 11:30 NST (America/St_Johns)"
        );
    }

    #[test]
    fn each_kind_says_what_happened_which_class_when_and_where() {
        let booked = letter(Kind::Booked, Language::English);
        assert_eq!(
            booked.subject(),
            "FitFlow: booking confirmed, Strength on Wednesday 10 March 2027 at 10:00 EST (America/Toronto)"
        );
        let text = booked.text();
        assert!(text.starts_with("Hello Zoé,\n"), "{text}");
        assert!(text.contains("Your place in Strength on Wednesday 10 March 2027 at 10:00 EST (America/Toronto) is booked."), "{text}");
        assert!(text.contains("Where: at the studio."), "{text}");

        let promoted = letter(Kind::Promoted, Language::English);
        assert!(
            promoted
                .subject()
                .starts_with("FitFlow: a place opened up for you, Strength")
        );
        assert!(promoted.text().contains("you were on the waitlist"));

        let cancelled = Letter {
            location: Location::Online,
            ..letter(Kind::Cancelled, Language::English)
        };
        assert!(
            cancelled
                .subject()
                .starts_with("FitFlow: cancelled, Strength on Wednesday")
        );
        assert!(cancelled.text().contains("is cancelled."));
        assert!(cancelled.text().contains("Where: online."));

        let reminder = Letter {
            location: Location::ClientLocation,
            ..letter(Kind::Reminder, Language::English)
        };
        assert!(
            reminder
                .subject()
                .starts_with("FitFlow: reminder, Strength on Wednesday")
        );
        assert!(reminder.text().contains("Where: at your place."));
    }

    #[test]
    fn a_client_in_quebec_reads_french() {
        assert_eq!(
            Language::for_province(Some(fitflow_proto::types::Province::Qc)),
            Language::French
        );
        assert_eq!(
            Language::for_province(Some(fitflow_proto::types::Province::On)),
            Language::English
        );
        assert_eq!(Language::for_province(None), Language::English);
        let reminder = letter(Kind::Reminder, Language::French);
        assert_eq!(
            reminder.subject(),
            "FitFlow : rappel, Strength le mercredi 10 mars 2027 à 10 h 00 EST (America/Toronto)"
        );
        let text = reminder.text();
        assert!(text.starts_with("Bonjour Zoé,\n"), "{text}");
        assert!(text.contains("Lieu : au studio."), "{text}");
        for kind in [Kind::Booked, Kind::Promoted, Kind::Cancelled] {
            let text = letter(kind, Language::French).text();
            assert!(text.contains("Strength le mercredi 10 mars 2027"), "{text}");
        }
    }

    #[test]
    fn a_series_confirmation_counts_its_sessions() {
        let series = Letter {
            series_sessions: Some(12),
            ..letter(Kind::Booked, Language::English)
        };
        assert!(series.text().contains("the first of 12 weekly sessions"));
        let reminder = Letter {
            series_sessions: Some(12),
            ..letter(Kind::Reminder, Language::English)
        };
        assert!(!reminder.text().contains("weekly sessions"));
    }

    #[test]
    fn a_letter_carries_nothing_but_the_class_the_time_and_the_kind_of_place() {
        // Everything a letter is made of is in `Letter`: no field for a
        // price, a note, a location's details or health information can
        // reach it. What it prints is only those fields and fixed words.
        for language in [Language::English, Language::French] {
            for kind in [
                Kind::Booked,
                Kind::Promoted,
                Kind::Cancelled,
                Kind::Reminder,
            ] {
                let text = letter(kind, language).text();
                assert!(!text.contains('$'), "{text}");
                assert!(!text.contains("http"), "{text}");
                for line in text.lines() {
                    assert!(line.chars().count() <= 200, "{line}");
                }
            }
        }
    }
}
