//! What a studio owes a contractor trainer, as invoice lines (pure rules, no
//! I/O): one line per session the trainer held at the studio, at the
//! contract's rate on the session's local date (in the studio's zone) for
//! its class category, taxed where the studio is (DESIGN.md §11).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::schedule::MAX_DRAFT_LINES;

/// A class category, which picks the contract's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Category {
    Group,
    Individual,
    Trial,
}

impl Category {
    fn label(self) -> &'static str {
        match self {
            Category::Group => "Group class",
            Category::Individual => "Individual session",
            Category::Trial => "Trial session",
        }
    }
}

/// A session the trainer held at the studio (scheduling's, decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StudioSession {
    pub appointment_id: Uuid,
    pub class_name: String,
    pub category: Category,
    /// Its local date in the studio's zone.
    pub local_date: NaiveDate,
    pub clients_present: i32,
}

/// One line to draft for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StudioLine {
    pub appointment_id: Uuid,
    pub description: String,
    pub unit_price: Decimal,
    pub province: Province,
}

/// The (category, date) pairs whose rate the first [`MAX_DRAFT_LINES`]
/// sessions need: each asked of tenancy once.
pub(crate) fn rates_needed(sessions: &[StudioSession]) -> BTreeSet<(Category, NaiveDate)> {
    sessions
        .iter()
        .take(MAX_DRAFT_LINES)
        .map(|session| (session.category, session.local_date))
        .collect()
}

/// The lines of `sessions` at `rates` (by category and date), in the order
/// given; the first session whose date has no rate is named instead: a
/// studio invoice is never drafted with a session priced by guess.
pub(crate) fn lines_for(
    sessions: &[StudioSession],
    rates: &BTreeMap<(Category, NaiveDate), Decimal>,
    province: Province,
) -> Result<Vec<StudioLine>, NaiveDate> {
    sessions
        .iter()
        .take(MAX_DRAFT_LINES)
        .map(|session| {
            let rate = rates
                .get(&(session.category, session.local_date))
                .copied()
                .ok_or(session.local_date)?;
            Ok(StudioLine {
                appointment_id: session.appointment_id,
                description: description(session),
                unit_price: rate,
                province,
            })
        })
        .collect()
}

/// "Group class Yoga flow, 2026-12-01 (8 present)": what, when and how
/// many came — no client is named.
fn description(session: &StudioSession) -> String {
    let name: String = session
        .class_name
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    format!(
        "{} {}, {} ({} present)",
        session.category.label(),
        name.trim(),
        session.local_date,
        session.clients_present
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u128, category: Category, date: &str, present: i32) -> StudioSession {
        StudioSession {
            appointment_id: Uuid::from_u128(n),
            class_name: "Yoga flow".to_owned(),
            category,
            local_date: date.parse().unwrap(),
            clients_present: present,
        }
    }

    fn d(date: &str) -> NaiveDate {
        date.parse().unwrap()
    }

    #[test]
    fn each_session_is_priced_at_the_rate_of_its_own_date_and_category() {
        let sessions = [
            session(1, Category::Group, "2026-11-30", 8),
            session(2, Category::Group, "2026-12-01", 0),
            session(3, Category::Individual, "2026-12-01", 1),
        ];
        let rates = BTreeMap::from([
            ((Category::Group, d("2026-11-30")), Decimal::new(6000, 2)),
            ((Category::Group, d("2026-12-01")), Decimal::new(6500, 2)),
            (
                (Category::Individual, d("2026-12-01")),
                Decimal::new(8000, 2),
            ),
        ]);
        let lines = lines_for(&sessions, &rates, Province::Bc).unwrap();
        let prices: Vec<Decimal> = lines.iter().map(|line| line.unit_price).collect();
        assert_eq!(
            prices,
            [
                Decimal::new(6000, 2),
                Decimal::new(6500, 2),
                Decimal::new(8000, 2)
            ]
        );
        assert_eq!(
            lines[0].description,
            "Group class Yoga flow, 2026-11-30 (8 present)"
        );
        assert_eq!(
            lines[1].description,
            "Group class Yoga flow, 2026-12-01 (0 present)"
        );
        assert_eq!(
            lines[2].description,
            "Individual session Yoga flow, 2026-12-01 (1 present)"
        );
        assert!(lines.iter().all(|line| line.province == Province::Bc));
    }

    #[test]
    fn a_session_on_a_date_without_a_rate_names_that_date() {
        let sessions = [
            session(1, Category::Group, "2026-11-30", 3),
            session(2, Category::Trial, "2026-12-02", 1),
        ];
        let rates = BTreeMap::from([((Category::Group, d("2026-11-30")), Decimal::ONE)]);
        assert_eq!(
            lines_for(&sessions, &rates, Province::On),
            Err(d("2026-12-02"))
        );
    }

    #[test]
    fn each_rate_is_asked_once_and_only_for_the_sessions_drafted() {
        let mut sessions: Vec<StudioSession> = (0..250)
            .map(|n| session(n, Category::Group, "2026-12-01", 2))
            .collect();
        sessions[10].category = Category::Trial;
        sessions[240].local_date = d("2026-12-31");
        let needed = rates_needed(&sessions);
        assert_eq!(
            needed,
            BTreeSet::from([
                (Category::Group, d("2026-12-01")),
                (Category::Trial, d("2026-12-01"))
            ])
        );
    }

    #[test]
    fn control_characters_in_a_class_name_never_reach_the_line() {
        let mut held = session(1, Category::Group, "2026-12-01", 2);
        held.class_name = "Spin\n\u{7}class".to_owned();
        assert_eq!(
            description(&held),
            "Group class Spinclass, 2026-12-01 (2 present)"
        );
    }
}
