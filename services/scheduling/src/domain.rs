//! Scheduling's rules as pure functions: class categories, appointment
//! states, when a booking is well-formed, and how long a listing may span.

use chrono::{DateTime, Duration, Timelike, Utc};

/// What kind of class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Several participants.
    Group,
    /// One client.
    Individual,
    /// A first session with one client.
    Trial,
}

impl Category {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Group => "group",
            Category::Individual => "individual",
            Category::Trial => "trial",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [Category::Group, Category::Individual, Category::Trial]
            .into_iter()
            .find(|category| category.as_str() == value)
    }

    /// Whether a booking of this class names its one client.
    pub fn needs_client(self) -> bool {
        !matches!(self, Category::Group)
    }
}

/// Where an appointment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Booked, not yet held.
    Scheduled,
    /// Held.
    Completed,
    /// Cancelled.
    Cancelled,
    /// The client did not come.
    NoShow,
}

impl Status {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no_show",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Status::Scheduled,
            Status::Completed,
            Status::Cancelled,
            Status::NoShow,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    /// Only a scheduled appointment can be cancelled.
    pub fn can_cancel(self) -> bool {
        self == Status::Scheduled
    }
}

/// Where an appointment happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// At a studio.
    Studio,
    /// Online.
    Online,
    /// At the client's place.
    ClientLocation,
}

impl Location {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Studio => "studio",
            Location::Online => "online",
            Location::ClientLocation => "client_location",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [Location::Studio, Location::Online, Location::ClientLocation]
            .into_iter()
            .find(|location| location.as_str() == value)
    }
}

/// Bookings start on whole minutes (calendars think in minutes; it also
/// keeps equal times equal after a round trip through clients).
pub fn on_whole_minute(start: DateTime<Utc>) -> bool {
    start.second() == 0 && start.nanosecond() == 0
}

/// When a session of `duration_minutes` starting at `start` ends.
pub fn end_of(start: DateTime<Utc>, duration_minutes: i32) -> DateTime<Utc> {
    start + Duration::minutes(i64::from(duration_minutes))
}

/// The longest window `ListAppointments` reads at once.
pub const MAX_LIST_SPAN: Duration = Duration::days(92);

/// Whether [start, end) is a listing window: end after start, at most 92 days.
pub fn valid_window(start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    end > start && end - start <= MAX_LIST_SPAN
}

/// A calendar colour "#RRGGBB" (upper-cased), or empty.
pub fn color(value: &str) -> Option<String> {
    let upper = value.to_ascii_uppercase();
    let ok = upper.is_empty()
        || (upper.len() == 7
            && upper.starts_with('#')
            && upper[1..].bytes().all(|byte| byte.is_ascii_hexdigit()));
    ok.then_some(upper)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn only_group_classes_book_without_a_client() {
        assert!(!Category::Group.needs_client());
        assert!(Category::Individual.needs_client());
        assert!(Category::Trial.needs_client());
    }

    #[test]
    fn only_a_scheduled_appointment_can_be_cancelled() {
        assert!(Status::Scheduled.can_cancel());
        for status in [Status::Completed, Status::Cancelled, Status::NoShow] {
            assert!(!status.can_cancel());
        }
    }

    #[test]
    fn a_session_ends_its_duration_after_it_starts_even_across_the_year() {
        let start = Utc.with_ymd_and_hms(2026, 12, 31, 23, 30, 0).unwrap();
        assert_eq!(
            end_of(start, 60),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 30, 0).unwrap()
        );
        assert!(on_whole_minute(start));
        assert!(!on_whole_minute(start + Duration::seconds(1)));
    }

    #[test]
    fn a_listing_window_is_forward_and_at_most_ninety_two_days() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(valid_window(start, start + Duration::days(7)));
        assert!(valid_window(start, start + MAX_LIST_SPAN));
        assert!(!valid_window(
            start,
            start + MAX_LIST_SPAN + Duration::seconds(1)
        ));
        assert!(!valid_window(start, start));
    }

    #[test]
    fn colours_are_hash_and_six_hex_digits() {
        assert_eq!(color("#a1b2c3").as_deref(), Some("#A1B2C3"));
        assert_eq!(color("").as_deref(), Some(""));
        assert_eq!(color("a1b2c3"), None);
        assert_eq!(color("#a1b2c"), None);
        assert_eq!(color("#GGGGGG"), None);
    }
}
