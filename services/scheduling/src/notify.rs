//! Mail to clients about their appointments: a booking confirmation, a
//! waitlist promotion, a cancellation, and a reminder ahead of the session.
//!
//! Each is first an *intent*, a row of `appointment_notifications` recorded
//! in the transaction that books, promotes or cancels (or, for a reminder,
//! by the sweep), with its audit event: no change without its notice, and
//! no notice of a change that rolled back. The relay ([`run_relay`], one
//! leader per schema) then reads the client's contact from clients
//! (`GetContact`, purpose OPERATIONS, as the service itself), writes the
//! letter ([`letter`]) and hands it to the platform mailer, and settles the
//! intent — sent, skipped or failed — with an audit event naming the
//! appointment, the client and the kind, in one transaction.
//!
//! Sent once: a settled intent is never read again, so a restart or a
//! second replica sends nothing twice. The one window for a second copy is
//! between the SMTP server's acceptance and the settling commit (a crash
//! there re-sends that one message after the restart): delivery is at
//! least once, as for every relay of the platform, and the window is one
//! `UPDATE` long. A reminder is recorded once per (appointment, client)
//! by a unique key, whatever sweeps race.
//!
//! A client without an email, or purged since (`NOT_FOUND`), is skipped
//! (recorded, never retried); clients or the mail server being unreachable
//! is retried with backoff, in order, and given up after
//! [`MAX_ATTEMPTS`]. A failure of one notification alone (the mail server
//! deferring its recipient, clients failing on its client) defers that one
//! by its own backoff and the relay goes on with the rest, so one poisoned
//! notice never holds back everyone else's. The letters carry no health information: the class
//! type's name, the local time with its zone named, and where.

pub mod letter;
mod relay;
mod sweep;

use std::time::Duration;

use chrono::{DateTime, Utc};
use fitflow_mail::MailError;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use crate::{SERVICE, SchedulingError, repo};

pub use relay::run_relay;
pub use sweep::{run_sweeper, sweep_reminders};

/// How far ahead of a session its reminder goes, unless configured.
pub const DEFAULT_REMINDER_LEAD: chrono::Duration = chrono::Duration::hours(24);
/// The environment variable of the reminder lead time, in hours.
pub const REMINDER_LEAD_VAR: &str = "FITFLOW_SCHEDULING_REMINDER_HOURS";
/// How often the reminder sweep runs, unless configured.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Transient failures of one notification before it is given up.
pub const MAX_ATTEMPTS: i32 = 200;

/// How the notifications of one process run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifySettings {
    /// How long before its start a session is reminded.
    pub reminder_lead: chrono::Duration,
    /// How often the sweep looks for sessions entering that window (the
    /// first sweep runs at start).
    pub sweep_interval: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            reminder_lead: DEFAULT_REMINDER_LEAD,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }
}

impl NotifySettings {
    /// The defaults, with the lead time from [`REMINDER_LEAD_VAR`] when set
    /// (whole hours, 1 to 168).
    pub fn from_env() -> anyhow::Result<Self> {
        let reminder_lead = match std::env::var(REMINDER_LEAD_VAR) {
            Ok(value) => parse_lead_hours(&value).ok_or_else(|| {
                anyhow::anyhow!("{REMINDER_LEAD_VAR} must be a whole number of hours from 1 to 168")
            })?,
            Err(_) => DEFAULT_REMINDER_LEAD,
        };
        Ok(Self {
            reminder_lead,
            ..Self::default()
        })
    }
}

/// A lead time of `value` hours, 1 to 168 (a week).
pub fn parse_lead_hours(value: &str) -> Option<chrono::Duration> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|hours| (1..=168).contains(hours))
        .map(chrono::Duration::hours)
}

/// What a notification tells the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Their appointment, or their place in a class, is booked.
    Booked,
    /// A place freed up and they moved from the waitlist into it.
    Promoted,
    /// Their appointment, or their place in a class, is cancelled.
    Cancelled,
    /// Their session is coming up.
    Reminder,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Booked => "booked",
            Kind::Promoted => "promoted",
            Kind::Cancelled => "cancelled",
            Kind::Reminder => "reminder",
        }
    }

    /// From storage.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Kind::Booked,
            Kind::Promoted,
            Kind::Cancelled,
            Kind::Reminder,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == value)
    }
}

/// A notification to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Intent {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub trainer_id: Uuid,
    pub kind: Kind,
    /// The participant's place (its `position`) for a group class's events;
    /// 0 for an individual appointment's and for reminders.
    pub occurrence: i64,
}

/// Who records an intent, for its audit event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Recorder {
    /// A user's request.
    User(Uuid),
    /// The service itself (the reminder sweep).
    Service,
}

/// The audit table of notifications.
pub(crate) const TABLE: &str = "appointment_notifications";

/// Records `intent` on `conn` (inside the transaction of the change it
/// tells about) with its audit event, unless it was recorded already; true
/// when it is new.
pub(crate) async fn record(
    conn: &mut sqlx::PgConnection,
    recorder: Recorder,
    intent: Intent,
) -> Result<bool, SchedulingError> {
    let Some(id) = repo::insert_notification(&mut *conn, &intent).await? else {
        return Ok(false);
    };
    let event = AuditEventBuilder::new(SERVICE, Action::Create, TABLE, id);
    let event = match recorder {
        Recorder::User(user_id) => event.actor_user(user_id),
        Recorder::Service => event.actor_service(SERVICE),
    }
    .tenant(intent.trainer_id)
    .change("appointment_id", "", &intent.appointment_id.to_string())
    .change("client_id", "", &intent.client_id.to_string())
    .change("kind", "", intent.kind.as_str())
    .build();
    fitflow_outbox::record(conn, &event).await?;
    Ok(true)
}

/// Whether a session starting at `start`, booked at `booked_at`, is owed
/// its reminder at `now`: its reminder window (`lead` before the start) has
/// opened, it has not started, and it was booked before the window opened —
/// a booking made inside the window was just confirmed by mail, with the
/// time, and gets no second message.
pub fn reminder_due(
    now: DateTime<Utc>,
    lead: chrono::Duration,
    start: DateTime<Utc>,
    booked_at: DateTime<Utc>,
) -> bool {
    let window_opens = start - lead;
    window_opens <= now && now < start && booked_at <= window_opens
}

/// Whether a recorded notification is still worth sending at `now`: a
/// reminder only while the session is scheduled, ahead, and the client
/// still holds a place in it; the other kinds tell of something that
/// happened, and always go.
pub fn still_worth_sending(
    kind: Kind,
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    scheduled: bool,
    has_place: bool,
) -> bool {
    match kind {
        Kind::Reminder => scheduled && has_place && now < start,
        Kind::Booked | Kind::Promoted | Kind::Cancelled => true,
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The mail server accepted the letter.
    Sent,
    /// Nothing to send, for good (the word is stored).
    Skipped(&'static str),
    /// Refused for good (the word is stored).
    Failed(&'static str),
    /// Not now: retried with backoff (the reason is stored, without values),
    /// and the queue behind it waits (the mail server or clients is down).
    Retry(String),
    /// Not now for this notification alone: it waits out its own backoff
    /// while the ones behind it go (the reason is stored, without values).
    Defer(String),
}

/// What clients' refusal of `GetContact` means for a notification.
pub fn contact_refused(code: tonic::Code) -> Outcome {
    match code {
        // Purged or deleted since: nobody to tell.
        tonic::Code::NotFound => Outcome::Skipped("client_not_found"),
        code if fitflow_outbox::command::is_permanent(code) => Outcome::Failed("refused"),
        // Clients answered, but failed on this client's record: the others'
        // contacts may well be read.
        tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss => {
            Outcome::Defer(format!("GetContact: {code:?}"))
        }
        code => Outcome::Retry(format!("GetContact: {code:?}")),
    }
}

/// What the mailer's failure means for a notification.
pub fn mail_refused(error: &MailError) -> Outcome {
    match error {
        MailError::Recipient => Outcome::Skipped("invalid_address"),
        MailError::Message => Outcome::Failed("refused"),
        MailError::Smtp(failure) if failure.kind == "permanent" => Outcome::Failed("refused"),
        // The server answered this message with "not now" (a full or
        // greylisted mailbox); 421 closes the session for everyone.
        MailError::Smtp(failure)
            if failure.kind == "transient" && failure.code.as_deref() != Some("421") =>
        {
            Outcome::Defer(format!("mail: {error}"))
        }
        // The settings, the server's load or its reachability: fixable
        // without touching the notification.
        MailError::Settings(_) | MailError::Smtp(_) | MailError::Busy => {
            Outcome::Retry(format!("mail: {error}"))
        }
    }
}

/// The relay's wait after `failures` transient failures in a row: 1 s
/// doubling up to 5 minutes.
pub fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1)
        .saturating_mul(2_u32.saturating_pow(failures.min(16)))
        .min(Duration::from_secs(5 * 60))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use fitflow_mail::SmtpFailure;

    use super::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 10, hour, 0, 0).unwrap()
    }

    fn days_before(start: DateTime<Utc>, days: i64) -> DateTime<Utc> {
        start - chrono::Duration::days(days)
    }

    #[test]
    fn a_session_is_reminded_once_its_window_opens_and_until_it_starts() {
        let lead = chrono::Duration::hours(24);
        let start = at(14);
        let booked = days_before(start, 7);
        assert!(!reminder_due(
            start - lead - chrono::Duration::seconds(1),
            lead,
            start,
            booked
        ));
        assert!(reminder_due(start - lead, lead, start, booked));
        assert!(reminder_due(
            start - chrono::Duration::hours(2),
            lead,
            start,
            booked
        ));
        assert!(!reminder_due(start, lead, start, booked), "started");
        assert!(!reminder_due(
            start + chrono::Duration::hours(1),
            lead,
            start,
            booked
        ));
    }

    #[test]
    fn a_booking_made_inside_the_window_gets_no_reminder_on_top_of_its_confirmation() {
        let lead = chrono::Duration::hours(24);
        let start = at(14);
        let booked_inside = start - chrono::Duration::hours(5);
        assert!(!reminder_due(
            start - chrono::Duration::hours(4),
            lead,
            start,
            booked_inside
        ));
        let booked_as_it_opens = start - lead;
        assert!(reminder_due(
            start - chrono::Duration::hours(4),
            lead,
            start,
            booked_as_it_opens
        ));
    }

    #[test]
    fn the_lead_time_is_configurable() {
        let lead = parse_lead_hours("2").unwrap();
        let start = at(14);
        let booked = days_before(start, 1);
        assert!(!reminder_due(at(11), lead, start, booked));
        assert!(reminder_due(at(12), lead, start, booked));
        assert_eq!(parse_lead_hours(" 48 "), Some(chrono::Duration::hours(48)));
        for refused in ["0", "169", "-3", "1.5", "", "24h"] {
            assert_eq!(parse_lead_hours(refused), None, "{refused}");
        }
    }

    #[test]
    fn only_a_reminder_lapses_and_every_other_notice_goes_out() {
        let start = at(14);
        let before = at(10);
        assert!(still_worth_sending(
            Kind::Reminder,
            before,
            start,
            true,
            true
        ));
        assert!(
            !still_worth_sending(Kind::Reminder, before, start, false, true),
            "cancelled"
        );
        assert!(
            !still_worth_sending(Kind::Reminder, before, start, true, false),
            "left"
        );
        assert!(
            !still_worth_sending(Kind::Reminder, at(15), start, true, true),
            "over"
        );
        for kind in [Kind::Booked, Kind::Promoted, Kind::Cancelled] {
            assert!(
                still_worth_sending(kind, at(15), start, false, false),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_purged_client_is_skipped_a_refusal_fails_and_an_outage_is_retried() {
        assert_eq!(
            contact_refused(tonic::Code::NotFound),
            Outcome::Skipped("client_not_found")
        );
        assert_eq!(
            contact_refused(tonic::Code::PermissionDenied),
            Outcome::Failed("refused")
        );
        for code in [tonic::Code::Unavailable, tonic::Code::DeadlineExceeded] {
            assert!(
                matches!(contact_refused(code), Outcome::Retry(_)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_failure_on_one_clients_record_defers_that_notification_alone() {
        for code in [
            tonic::Code::Internal,
            tonic::Code::Unknown,
            tonic::Code::DataLoss,
        ] {
            assert!(
                matches!(contact_refused(code), Outcome::Defer(_)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn a_bad_address_is_skipped_a_rejected_message_fails_and_a_busy_server_is_retried() {
        assert_eq!(
            mail_refused(&MailError::Recipient),
            Outcome::Skipped("invalid_address")
        );
        let rejected = MailError::Smtp(SmtpFailure {
            kind: "permanent",
            code: Some("550".to_owned()),
        });
        assert_eq!(mail_refused(&rejected), Outcome::Failed("refused"));
        let closing = MailError::Smtp(SmtpFailure {
            kind: "transient",
            code: Some("421".to_owned()),
        });
        assert!(matches!(mail_refused(&closing), Outcome::Retry(_)));
        assert!(matches!(mail_refused(&MailError::Busy), Outcome::Retry(_)));
        let unreachable = MailError::Smtp(SmtpFailure {
            kind: "connection",
            code: None,
        });
        assert!(matches!(mail_refused(&unreachable), Outcome::Retry(_)));
    }

    #[test]
    fn a_recipient_the_server_defers_defers_that_notification_alone() {
        for code in ["450", "451", "452"] {
            let later = MailError::Smtp(SmtpFailure {
                kind: "transient",
                code: Some(code.to_owned()),
            });
            assert!(matches!(mail_refused(&later), Outcome::Defer(_)), "{code}");
        }
    }

    #[test]
    fn retries_back_off_from_a_second_to_five_minutes() {
        assert_eq!(retry_delay(0), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(8));
        assert_eq!(retry_delay(40), Duration::from_secs(300));
    }

    #[test]
    fn kinds_round_trip_through_storage() {
        for kind in [
            Kind::Booked,
            Kind::Promoted,
            Kind::Cancelled,
            Kind::Reminder,
        ] {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("waitlisted"), None);
    }
}
