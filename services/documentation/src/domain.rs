//! The documentation rules that need no database: note and plan states,
//! what each view shows, unit conversion and plan adherence.

use chrono::{Datelike as _, Duration, NaiveDate};
use fitflow_proto::documentation as pb;

/// Kilograms in a pound (exact, by definition).
pub const KG_PER_LB: f64 = 0.453_592_37;
/// Centimetres in an inch (exact, by definition).
pub const CM_PER_IN: f64 = 2.54;

/// Where a note stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteStatus {
    /// Being written.
    Draft,
    /// Signed: its text never changes.
    Signed,
}

impl NoteStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteStatus::Draft => "draft",
            NoteStatus::Signed => "signed",
        }
    }

    /// The stored form read back.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "draft" => Some(NoteStatus::Draft),
            "signed" => Some(NoteStatus::Signed),
            _ => None,
        }
    }
}

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    /// Being followed.
    Active,
    /// On hold.
    Paused,
    /// Done.
    Completed,
    /// Given up.
    Cancelled,
}

impl PlanStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::Paused => "paused",
            PlanStatus::Completed => "completed",
            PlanStatus::Cancelled => "cancelled",
        }
    }

    /// The stored form read back.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(PlanStatus::Active),
            "paused" => Some(PlanStatus::Paused),
            "completed" => Some(PlanStatus::Completed),
            "cancelled" => Some(PlanStatus::Cancelled),
            _ => None,
        }
    }
}

/// Who a note is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Everything.
    Trainer,
    /// What the client is shown.
    Client,
}

/// gRPC's default largest message (tonic and most clients): every answer
/// is built to fit it.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most bytes of notes or plans in one list page or export message: under
/// [`MAX_MESSAGE_BYTES`], above any single note or plan (a page always holds
/// at least one).
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;
/// Most bytes of a note with its whole history (original, amendments and
/// current text, view TRAINER) without its AI summary: with the longest AI
/// summary beside it, a read still fits [`MAX_MESSAGE_BYTES`]; and a note
/// of the largest request plus one amendment of the largest request (its
/// text counted twice, as original-then-amended and as current) fits it.
pub const MAX_NOTE_HISTORY_BYTES: usize = 3 * 1024 * 1024 + 512 * 1024;
/// Most stored bytes of documentation the superseded one-message export
/// loads for one request; past it the caller uses the stream.
pub const MAX_WHOLE_EXPORT_BYTES: usize = 64 * 1024 * 1024;
/// Most notes one GetProgress reads (so its answer is bounded too).
pub const MAX_PROGRESS_NOTES: usize = 5_000;

/// The bytes `note` counts against [`MAX_NOTE_HISTORY_BYTES`]: its encoded
/// form without its AI summary (bounded apart, by validation).
pub fn history_bytes(note: &pb::SessionNote) -> usize {
    use prost::Message as _;
    let summary = note.ai_summary.as_ref().map_or(0, |summary| {
        prost::encoding::message::encoded_len(14, summary)
    });
    note.encoded_len() - summary
}

/// Whether an item of `next` bytes joins a page already holding `used`
/// bytes: always the first, then only while the page stays within
/// [`MAX_PAGE_BYTES`].
pub fn joins_page(used: usize, next: usize) -> bool {
    used == 0 || used + next <= MAX_PAGE_BYTES
}

/// What a view of a note may hold: the client's view never shows private
/// notes, nor an AI summary the trainer has not accepted.
pub fn shape_for_view(note: &mut pb::SessionNote, view: View) {
    if view == View::Trainer {
        return;
    }
    let strip = |content: &mut Option<pb::SessionNoteContent>| {
        if let Some(content) = content {
            content.private_notes.clear();
        }
    };
    strip(&mut note.content);
    strip(&mut note.original_content);
    for amendment in &mut note.amendments {
        strip(&mut amendment.content);
    }
    if note
        .ai_summary
        .as_ref()
        .is_some_and(|summary| summary.accepted_by.is_empty())
    {
        note.ai_summary = None;
    }
}

/// What GetProgress charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Body weight, kg.
    BodyWeight,
    /// Body fat, %.
    BodyFat,
    /// Resting heart rate, bpm.
    RestingHeartRate,
    /// Systolic pressure, mmHg.
    Systolic,
    /// Diastolic pressure, mmHg.
    Diastolic,
    /// A girth at one site, cm.
    Girth(pb::GirthSite),
}

impl Metric {
    /// The unit every value of this metric is given in.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::BodyWeight => "kg",
            Metric::BodyFat => "%",
            Metric::RestingHeartRate => "bpm",
            Metric::Systolic | Metric::Diastolic => "mmHg",
            Metric::Girth(_) => "cm",
        }
    }

    /// The metric's value in `measurements`, in [`Metric::unit`].
    pub fn value_in(self, measurements: &pb::Measurements) -> Option<f64> {
        match self {
            Metric::BodyWeight => measurements.body_weight.as_ref().map(kilograms),
            Metric::BodyFat => measurements.body_fat_percent,
            Metric::RestingHeartRate => measurements.resting_heart_rate.map(f64::from),
            Metric::Systolic => measurements
                .blood_pressure
                .as_ref()
                .map(|pressure| f64::from(pressure.systolic)),
            Metric::Diastolic => measurements
                .blood_pressure
                .as_ref()
                .map(|pressure| f64::from(pressure.diastolic)),
            Metric::Girth(site) => measurements
                .girths
                .iter()
                .find(|girth| girth.site == site as i32)
                .map(centimetres),
        }
    }
}

/// A weight in kilograms.
pub fn kilograms(weight: &pb::Weight) -> f64 {
    match pb::WeightUnit::try_from(weight.unit) {
        Ok(pb::WeightUnit::Lb) => weight.value * KG_PER_LB,
        _ => weight.value,
    }
}

/// A girth in centimetres.
pub fn centimetres(girth: &pb::Girth) -> f64 {
    match pb::LengthUnit::try_from(girth.unit) {
        Ok(pb::LengthUnit::In) => girth.value * CM_PER_IN,
        _ => girth.value,
    }
}

/// A distance in kilometres.
pub fn kilometres(distance: &pb::Distance) -> f64 {
    match pb::DistanceUnit::try_from(distance.unit) {
        Ok(pb::DistanceUnit::M) => distance.value / 1000.0,
        Ok(pb::DistanceUnit::Mi) => distance.value * 1.609_344,
        _ => distance.value,
    }
}

/// One version of a plan as adherence needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSpan {
    /// First day.
    pub start: NaiveDate,
    /// Last day, if any.
    pub end: Option<NaiveDate>,
    /// Its status.
    pub status: PlanStatus,
    /// Sessions it plans per week.
    pub sessions_per_week: i32,
}

impl PlanSpan {
    fn covers_week(&self, monday: NaiveDate) -> bool {
        let sunday = monday + Duration::days(6);
        self.status == PlanStatus::Active
            && self.start <= sunday
            && self.end.is_none_or(|end| end >= monday)
    }
}

/// One ISO week's sessions: (Monday, done, planned).
pub type Week = (NaiveDate, i32, i32);

/// The Monday of `date`'s ISO week.
pub fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

/// Per ISO week overlapping [first, last]: the sessions documented that week
/// (one per date in `sessions`) and the sessions planned by the active plans
/// covering it (their sessions per week, summed: two plans in parallel are
/// both followed).
pub fn adherence(
    first: NaiveDate,
    last: NaiveDate,
    sessions: &[NaiveDate],
    plans: &[PlanSpan],
) -> Vec<Week> {
    let mut weeks = Vec::new();
    let mut monday = monday_of(first);
    while monday <= last {
        let sunday = monday + Duration::days(6);
        let done = sessions
            .iter()
            .filter(|date| **date >= monday && **date <= sunday)
            .count();
        let planned: i32 = plans
            .iter()
            .filter(|plan| plan.covers_week(monday))
            .map(|plan| plan.sessions_per_week)
            .sum();
        weeks.push((monday, i32::try_from(done).unwrap_or(i32::MAX), planned));
        monday += Duration::days(7);
    }
    weeks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn note_with_private_notes_and_summary(accepted: bool) -> pb::SessionNote {
        let content = pb::SessionNoteContent {
            subjective: "knee better".into(),
            private_notes: "worried about adherence".into(),
            ..Default::default()
        };
        pb::SessionNote {
            content: Some(content.clone()),
            original_content: Some(content.clone()),
            amendments: vec![pb::Amendment {
                content: Some(content),
                ..Default::default()
            }],
            ai_summary: Some(pb::AiSummary {
                text: "summary".into(),
                accepted_by: if accepted {
                    "someone".into()
                } else {
                    String::new()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_note_at_its_history_budget_with_the_longest_ai_summary_fits_one_grpc_message() {
        use prost::Message as _;
        let four_bytes = |chars: usize| "𝄞".repeat(chars);
        let time = Some(prost_types::Timestamp {
            seconds: 253_402_300_799,
            nanos: 999_999_999,
        });
        let summary = pb::AiSummary {
            text: four_bytes(crate::validate::MAX_TEXT),
            model: four_bytes(crate::validate::MAX_NAME),
            generate_time: time,
            submitted_by: uuid::Uuid::max().to_string(),
            submit_time: time,
            accepted_by: uuid::Uuid::max().to_string(),
            accept_time: time,
        };
        let note = pb::SessionNote {
            ai_summary: Some(summary.clone()),
            ..Default::default()
        };
        assert_eq!(history_bytes(&note), 0, "the summary is counted apart");
        // Field tag and length of the summary in the note, of the note in
        // the response.
        let answer = MAX_NOTE_HISTORY_BYTES + 1 + 4 + summary.encoded_len() + 1 + 4;
        assert!(answer < MAX_MESSAGE_BYTES, "{answer} bytes");
    }

    #[test]
    fn a_note_and_one_amendment_each_of_the_largest_request_fit_the_history_budget() {
        // Requests are decoded up to 1 MiB (service.rs): the original, the
        // amendment and the current text (the amendment's again) at most.
        let largest_request = 1024 * 1024;
        assert!(3 * largest_request + 4 * 1024 < MAX_NOTE_HISTORY_BYTES);
    }

    #[test]
    fn a_page_takes_its_first_item_whatever_its_size_and_then_only_what_fits() {
        assert!(joins_page(0, MAX_MESSAGE_BYTES));
        assert!(joins_page(MAX_PAGE_BYTES - 10, 10));
        assert!(!joins_page(MAX_PAGE_BYTES - 10, 11));
        let mib = 1024 * 1024;
        let mut used = 0;
        let mut taken = 0;
        for size in [mib, mib, mib, mib] {
            if !joins_page(used, size) {
                break;
            }
            used += size;
            taken += 1;
        }
        assert_eq!(taken, 3);
    }

    #[test]
    fn the_client_view_never_shows_private_notes_anywhere_in_the_history() {
        let mut note = note_with_private_notes_and_summary(true);
        shape_for_view(&mut note, View::Client);
        assert_eq!(note.content.as_ref().unwrap().private_notes, "");
        assert_eq!(note.original_content.as_ref().unwrap().private_notes, "");
        assert_eq!(
            note.amendments[0].content.as_ref().unwrap().private_notes,
            ""
        );
        assert_eq!(note.content.as_ref().unwrap().subjective, "knee better");
        assert!(note.ai_summary.is_some(), "an accepted summary is shown");
    }

    #[test]
    fn the_client_view_hides_an_ai_summary_nobody_accepted() {
        let mut note = note_with_private_notes_and_summary(false);
        shape_for_view(&mut note, View::Client);
        assert!(note.ai_summary.is_none());
        let mut trainer = note_with_private_notes_and_summary(false);
        shape_for_view(&mut trainer, View::Trainer);
        assert!(trainer.ai_summary.is_some());
        assert_eq!(
            trainer.content.unwrap().private_notes,
            "worried about adherence"
        );
    }

    #[test]
    fn pounds_and_inches_are_charted_in_kilograms_and_centimetres() {
        let measurements = pb::Measurements {
            body_weight: Some(pb::Weight {
                value: 176.0,
                unit: pb::WeightUnit::Lb as i32,
            }),
            girths: vec![pb::Girth {
                site: pb::GirthSite::Waist as i32,
                value: 32.0,
                unit: pb::LengthUnit::In as i32,
            }],
            ..Default::default()
        };
        let kg = Metric::BodyWeight.value_in(&measurements).unwrap();
        assert!((kg - 79.832_257_12).abs() < 1e-9, "{kg}");
        let cm = Metric::Girth(pb::GirthSite::Waist)
            .value_in(&measurements)
            .unwrap();
        assert!((cm - 81.28).abs() < 1e-9, "{cm}");
        assert_eq!(
            Metric::Girth(pb::GirthSite::Hips).value_in(&measurements),
            None
        );
        assert_eq!(Metric::RestingHeartRate.value_in(&measurements), None);
    }

    #[test]
    fn adherence_counts_sessions_per_iso_week_against_the_active_plan() {
        // 2026-11-02 is a Monday.
        let plans = [
            PlanSpan {
                start: date(2026, 11, 4),
                end: Some(date(2026, 11, 15)),
                status: PlanStatus::Active,
                sessions_per_week: 3,
            },
            PlanSpan {
                start: date(2026, 11, 1),
                end: None,
                status: PlanStatus::Paused,
                sessions_per_week: 5,
            },
        ];
        let sessions = [date(2026, 11, 3), date(2026, 11, 5), date(2026, 11, 19)];
        let weeks = adherence(date(2026, 11, 4), date(2026, 11, 22), &sessions, &plans);
        assert_eq!(
            weeks,
            vec![
                (date(2026, 11, 2), 2, 3),
                (date(2026, 11, 9), 0, 3),
                (date(2026, 11, 16), 1, 0),
            ]
        );
    }

    #[test]
    fn stored_states_read_back_and_unknown_ones_do_not() {
        for status in [NoteStatus::Draft, NoteStatus::Signed] {
            assert_eq!(NoteStatus::parse(status.as_str()), Some(status));
        }
        for status in [
            PlanStatus::Active,
            PlanStatus::Paused,
            PlanStatus::Completed,
            PlanStatus::Cancelled,
        ] {
            assert_eq!(PlanStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(NoteStatus::parse("Signed"), None);
        assert_eq!(PlanStatus::parse(""), None);
    }
}
