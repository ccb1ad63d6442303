//! Session packs (pure rules, no I/O, no proto): a client buys a pack of N
//! sessions as a line of an invoice; once that invoice is issued, held
//! sessions drafted from the schedule are drawn from the pack instead of
//! being billed — from the pack expiring first, while its expiry date is on
//! or after the session's local date and sessions are left.

use chrono::NaiveDate;
use uuid::Uuid;

/// Most sessions one pack holds.
pub(crate) const MAX_PACK_SESSIONS: i32 = 1_000;

/// A pack as a draft sees it (locked for the draft's transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Balance {
    pub id: Uuid,
    pub sessions: i32,
    pub used: i32,
    pub expires_on: NaiveDate,
    /// Cancelled packs (their invoice voided) draw nothing.
    pub active: bool,
    /// When it was sold: between two packs expiring the same day, the
    /// older is drawn first.
    pub sold_at: chrono::DateTime<chrono::Utc>,
}

impl Balance {
    /// Whether a session of `local_date` may be drawn from it.
    fn covers(&self, local_date: NaiveDate) -> bool {
        self.active && self.used < self.sessions && local_date <= self.expires_on
    }
}

/// Draws one session of `local_date` from `packs`: the covering pack
/// expiring first (then the oldest sold, then the smallest id), whose
/// `used` goes up by one; its index, or `None` when no pack covers it (the
/// session is billed).
pub(crate) fn draw(packs: &mut [Balance], local_date: NaiveDate) -> Option<usize> {
    let chosen = packs
        .iter()
        .enumerate()
        .filter(|(_, pack)| pack.covers(local_date))
        .min_by_key(|(_, pack)| (pack.expires_on, pack.sold_at, pack.id))
        .map(|(index, _)| index)?;
    packs[chosen].used += 1;
    debug_assert!(packs[chosen].used <= packs[chosen].sessions);
    Some(chosen)
}

/// How a line selling a pack reads when its description is left empty:
/// "Pack of 10 sessions, expires 2027-03-31".
pub(crate) fn sale_description(sessions: i32, expires_on: NaiveDate) -> String {
    let noun = if sessions == 1 { "session" } else { "sessions" };
    format!("Pack of {sessions} {noun}, expires {expires_on}")
}

/// How the 0.00 line of a session drawn from a pack reads: the session's
/// own description, then the pack's.
pub(crate) fn drawn_description(session: &str, pack: &Balance) -> String {
    let pack_text = sale_description(pack.sessions, pack.expires_on);
    // "Pack of …" reads as "pack of …" after a dash.
    format!("{session} - from {}", lowercase_first(&pack_text))
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::*;

    fn date(month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, month, day).unwrap()
    }

    fn pack(id: u128, sessions: i32, used: i32, expires_on: NaiveDate) -> Balance {
        Balance {
            id: Uuid::from_u128(id),
            sessions,
            used,
            expires_on,
            active: true,
            sold_at: Utc.with_ymd_and_hms(2027, 1, 1, 12, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_pack_of_three_draws_three_sessions_and_the_fourth_is_billed() {
        let mut packs = vec![pack(1, 3, 0, date(6, 30))];
        let drawn: Vec<Option<usize>> = (1..=4).map(|day| draw(&mut packs, date(3, day))).collect();
        assert_eq!(drawn, vec![Some(0), Some(0), Some(0), None]);
        assert_eq!(packs[0].used, 3);
    }

    #[test]
    fn the_pack_expiring_first_is_drawn_first() {
        let mut packs = vec![pack(1, 5, 0, date(9, 30)), pack(2, 1, 0, date(4, 30))];
        assert_eq!(draw(&mut packs, date(3, 1)), Some(1));
        assert_eq!(draw(&mut packs, date(3, 2)), Some(0));
        assert_eq!((packs[0].used, packs[1].used), (1, 1));
    }

    #[test]
    fn between_packs_expiring_the_same_day_the_older_sale_is_drawn_first() {
        let older = pack(9, 2, 0, date(5, 31));
        let newer = Balance {
            sold_at: older.sold_at + chrono::Duration::days(1),
            ..pack(1, 2, 0, date(5, 31))
        };
        let mut packs = vec![newer, older];
        assert_eq!(draw(&mut packs, date(3, 1)), Some(1));
    }

    #[test]
    fn an_expired_pack_draws_nothing_but_covers_its_last_day() {
        let mut packs = vec![pack(1, 3, 0, date(3, 31))];
        assert_eq!(draw(&mut packs, date(4, 1)), None);
        assert_eq!(draw(&mut packs, date(3, 31)), Some(0));
        // A later session moves on to a pack that still covers it.
        packs.push(pack(2, 3, 0, date(12, 31)));
        assert_eq!(draw(&mut packs, date(4, 1)), Some(1));
    }

    #[test]
    fn a_used_up_or_cancelled_pack_draws_nothing() {
        let mut packs = vec![
            pack(1, 2, 2, date(12, 31)),
            Balance {
                active: false,
                ..pack(2, 10, 0, date(12, 31))
            },
        ];
        assert_eq!(draw(&mut packs, date(3, 1)), None);
        assert_eq!((packs[0].used, packs[1].used), (2, 0));
    }

    #[test]
    fn lines_name_the_pack_its_sessions_and_expiry() {
        assert_eq!(
            sale_description(10, date(3, 31)),
            "Pack of 10 sessions, expires 2027-03-31"
        );
        assert_eq!(
            sale_description(1, date(3, 31)),
            "Pack of 1 session, expires 2027-03-31"
        );
        assert_eq!(
            drawn_description("Training session 2027-03-02", &pack(1, 3, 1, date(3, 31))),
            "Training session 2027-03-02 - from pack of 3 sessions, expires 2027-03-31"
        );
    }
}
