//! What a studio owes a contractor trainer, as invoice lines (pure rules, no
//! I/O): one line per session the trainer held at the studio — or, for a
//! chain billed at its headquarters, at each of its consolidated locations —
//! at the rate of the contract with the location where it was held, on the
//! session's local date there, for its class category, taxed in that
//! location's province (DESIGN.md §11).

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

/// A session the trainer held at a studio (scheduling's, decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StudioSession {
    pub appointment_id: Uuid,
    /// Where it was held.
    pub studio_id: Uuid,
    pub class_name: String,
    pub category: Category,
    /// Its local date in its studio's zone.
    pub local_date: NaiveDate,
    pub clients_present: i32,
}

/// A studio whose sessions the invoice bills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    /// Where its sessions are supplied.
    pub province: Province,
    /// Its name, printed before its lines on an invoice to another studio
    /// (its headquarters); `None` for the studio billed itself.
    pub named: Option<String>,
}

/// A rate's key: the location's contract, the category and the date.
pub(crate) type RateKey = (Uuid, Category, NaiveDate);

/// One line to draft for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StudioLine {
    pub appointment_id: Uuid,
    /// Where it was held (the key that bills it once).
    pub studio_id: Uuid,
    pub description: String,
    pub unit_price: Decimal,
    pub province: Province,
}

/// The sessions this invoice bills: those held at `locations`, the first
/// [`MAX_DRAFT_LINES`] in start order (the rest stay billable).
pub(crate) fn billed_here<'a>(
    sessions: &'a [StudioSession],
    locations: &HashMap<Uuid, Location>,
) -> Vec<&'a StudioSession> {
    sessions
        .iter()
        .filter(|session| locations.contains_key(&session.studio_id))
        .take(MAX_DRAFT_LINES)
        .collect()
}

/// The rates `sessions` need, each asked of tenancy once.
pub(crate) fn rates_needed(sessions: &[&StudioSession]) -> BTreeSet<RateKey> {
    sessions
        .iter()
        .map(|session| (session.studio_id, session.category, session.local_date))
        .collect()
}

/// The lines of `sessions` at `rates`: the studio billed first, then each
/// location by name, each in start order. The first session whose date has
/// no rate is named instead: a studio invoice is never drafted with a
/// session priced by guess.
pub(crate) fn lines_for(
    sessions: &[&StudioSession],
    rates: &BTreeMap<RateKey, Decimal>,
    locations: &HashMap<Uuid, Location>,
) -> Result<Vec<StudioLine>, NaiveDate> {
    let mut lines = Vec::with_capacity(sessions.len());
    for session in sessions {
        let Some(location) = locations.get(&session.studio_id) else {
            continue;
        };
        let rate = rates
            .get(&(session.studio_id, session.category, session.local_date))
            .copied()
            .ok_or(session.local_date)?;
        lines.push((
            location.named.clone(),
            StudioLine {
                appointment_id: session.appointment_id,
                studio_id: session.studio_id,
                description: description(location.named.as_deref(), session),
                unit_price: rate,
                province: location.province,
            },
        ));
    }
    // Stable: start order within each location; the billed studio's own
    // (no name) before its locations'.
    lines.sort_by(|(a, line_a), (b, line_b)| (a, line_a.studio_id).cmp(&(b, line_b.studio_id)));
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

/// "Group class Yoga flow, 2026-12-01 (8 present)", after the location's
/// name on a headquarters' invoice: what, where, when and how many came —
/// no client is named.
fn description(location: Option<&str>, session: &StudioSession) -> String {
    let name: String = session
        .class_name
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let what = format!(
        "{} {}, {} ({} present)",
        session.category.label(),
        name.trim(),
        session.local_date,
        session.clients_present
    );
    match location {
        Some(location) => format!("{location}: {what}"),
        None => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HQ: Uuid = Uuid::from_u128(0xA);
    const EAST: Uuid = Uuid::from_u128(0xE);

    fn session(n: u128, at: Uuid, category: Category, date: &str, present: i32) -> StudioSession {
        StudioSession {
            appointment_id: Uuid::from_u128(n),
            studio_id: at,
            class_name: "Yoga flow".to_owned(),
            category,
            local_date: date.parse().unwrap(),
            clients_present: present,
        }
    }

    fn d(date: &str) -> NaiveDate {
        date.parse().unwrap()
    }

    fn hq_only() -> HashMap<Uuid, Location> {
        HashMap::from([(
            HQ,
            Location {
                province: Province::Bc,
                named: None,
            },
        )])
    }

    #[test]
    fn each_session_is_priced_at_the_rate_of_its_own_date_and_category() {
        let sessions = [
            session(1, HQ, Category::Group, "2026-11-30", 8),
            session(2, HQ, Category::Group, "2026-12-01", 0),
            session(3, HQ, Category::Individual, "2026-12-01", 1),
        ];
        let rates = BTreeMap::from([
            (
                (HQ, Category::Group, d("2026-11-30")),
                Decimal::new(6000, 2),
            ),
            (
                (HQ, Category::Group, d("2026-12-01")),
                Decimal::new(6500, 2),
            ),
            (
                (HQ, Category::Individual, d("2026-12-01")),
                Decimal::new(8000, 2),
            ),
        ]);
        let locations = hq_only();
        let billed = billed_here(&sessions, &locations);
        let lines = lines_for(&billed, &rates, &locations).unwrap();
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
            lines[2].description,
            "Individual session Yoga flow, 2026-12-01 (1 present)"
        );
        assert!(lines.iter().all(|line| line.province == Province::Bc));
    }

    #[test]
    fn a_headquarters_invoice_groups_its_locations_lines_each_taxed_where_held() {
        let sessions = [
            session(1, EAST, Category::Group, "2026-11-30", 4),
            session(2, HQ, Category::Group, "2026-12-01", 6),
            session(3, Uuid::from_u128(0xF), Category::Group, "2026-12-01", 2),
            session(4, EAST, Category::Trial, "2026-12-02", 1),
        ];
        let mut locations = hq_only();
        locations.insert(
            EAST,
            Location {
                province: Province::On,
                named: Some("Kits East".to_owned()),
            },
        );
        let billed = billed_here(&sessions, &locations);
        // The third session was held at a studio billed on its own.
        assert_eq!(billed.len(), 3);
        let rates: BTreeMap<RateKey, Decimal> = rates_needed(&billed)
            .into_iter()
            .map(|key| (key, Decimal::ONE))
            .collect();
        let lines = lines_for(&billed, &rates, &locations).unwrap();
        let order: Vec<(u128, Province)> = lines
            .iter()
            .map(|line| (line.appointment_id.as_u128(), line.province))
            .collect();
        assert_eq!(
            order,
            [(2, Province::Bc), (1, Province::On), (4, Province::On)]
        );
        assert_eq!(
            lines[1].description,
            "Kits East: Group class Yoga flow, 2026-11-30 (4 present)"
        );
    }

    #[test]
    fn a_session_on_a_date_without_a_rate_names_that_date() {
        let sessions = [
            session(1, HQ, Category::Group, "2026-11-30", 3),
            session(2, HQ, Category::Trial, "2026-12-02", 1),
        ];
        let rates = BTreeMap::from([((HQ, Category::Group, d("2026-11-30")), Decimal::ONE)]);
        let locations = hq_only();
        let billed = billed_here(&sessions, &locations);
        assert_eq!(lines_for(&billed, &rates, &locations), Err(d("2026-12-02")));
    }

    #[test]
    fn each_rate_is_asked_once_and_only_for_the_sessions_drafted() {
        let mut sessions: Vec<StudioSession> = (0..250)
            .map(|n| session(n, HQ, Category::Group, "2026-12-01", 2))
            .collect();
        sessions[10].category = Category::Trial;
        sessions[240].local_date = d("2026-12-31");
        let locations = hq_only();
        let billed = billed_here(&sessions, &locations);
        assert_eq!(billed.len(), MAX_DRAFT_LINES);
        assert_eq!(
            rates_needed(&billed),
            BTreeSet::from([
                (HQ, Category::Group, d("2026-12-01")),
                (HQ, Category::Trial, d("2026-12-01"))
            ])
        );
    }

    #[test]
    fn control_characters_in_a_class_name_never_reach_the_line() {
        let mut held = session(1, HQ, Category::Group, "2026-12-01", 2);
        held.class_name = "Spin\n\u{7}class".to_owned();
        assert_eq!(
            description(None, &held),
            "Group class Spinclass, 2026-12-01 (2 present)"
        );
    }
}
