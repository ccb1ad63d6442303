//! What scheduling's billable items become on a client invoice, and what a
//! payment tells scheduling back (DESIGN.md §11): pure rules, no I/O, no
//! proto.
//!
//! An item is one charge of one client for one appointment: a held session
//! (at the appointment's `client_price`), a late cancellation's or a
//! no-show's fee. Its [`ItemKey`] — (appointment, client, charge) — is
//! billed on at most one invoice that is not void (the `billed_items`
//! table holds that); [`lines_for`] picks the client's items still to bill
//! and turns each into one line.

use std::collections::HashSet;

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use rust_decimal::Decimal;
use uuid::Uuid;

/// Most lines of one invoice (as UpdateInvoice allows).
pub(crate) const MAX_DRAFT_LINES: usize = 200;

/// What an item charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Charge {
    /// A held session.
    Session,
    /// A late cancellation's fee.
    LateCancel,
    /// A no-show's fee.
    NoShow,
    /// A session held at a studio, billed to the studio at the contract's
    /// rate (`studio_invoices`); never one of scheduling's billable items.
    StudioRate,
}

impl Charge {
    /// The stored form.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Charge::Session => "session",
            Charge::LateCancel => "late_cancel",
            Charge::NoShow => "no_show",
            Charge::StudioRate => "studio_rate",
        }
    }

    /// From the stored form.
    pub(crate) fn parse(stored: &str) -> Option<Self> {
        match stored {
            "session" => Some(Charge::Session),
            "late_cancel" => Some(Charge::LateCancel),
            "no_show" => Some(Charge::NoShow),
            "studio_rate" => Some(Charge::StudioRate),
            _ => None,
        }
    }

    /// How a line names it, before the appointment's date.
    fn label(self) -> &'static str {
        match self {
            Charge::Session => "Training session",
            Charge::LateCancel => "Late cancellation fee",
            Charge::NoShow => "No-show fee",
            Charge::StudioRate => "Studio session",
        }
    }
}

/// What makes an item billed once: the appointment, the client who pays
/// and what is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ItemKey {
    pub appointment_id: Uuid,
    pub client_id: Uuid,
    pub charge: Charge,
}

/// Where scheduling says a client's payment for an appointment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Not paid yet: billable.
    Pending,
    /// Paid or refunded already: not billed again.
    Settled,
}

/// A billable item as scheduling lists it (decoded).
#[derive(Debug, Clone)]
pub(crate) struct Billable {
    pub key: ItemKey,
    /// The price or fee; `None` for a session whose appointment has no price.
    pub amount: Option<Decimal>,
    /// The appointment's local date.
    pub local_date: NaiveDate,
    /// The appointment's studio, when scheduling records one.
    pub studio_id: Option<Uuid>,
    pub settlement: Settlement,
}

/// One line to draft for an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DraftLine {
    pub key: ItemKey,
    pub description: String,
    pub unit_price: Decimal,
    pub province: Province,
}

/// The province of supply of a session or fee: the studio's where the
/// appointment was (when known), else the trainer's province of business.
/// Scheduling records no session location, so a client's province (for an
/// online or at-home session) never applies here.
pub(crate) fn province_of_supply(studio: Option<Province>, trainer: Province) -> Province {
    studio.unwrap_or(trainer)
}

/// The client's items of `listed` to try to bill, in the order listed
/// (start order): theirs, not settled in scheduling, each key once. Which
/// of them another invoice holds already only the database knows, at the
/// moment a draft claims them.
pub(crate) fn candidates(listed: &[Billable], client_id: Uuid) -> Vec<&Billable> {
    let mut seen = HashSet::new();
    listed
        .iter()
        .filter(|item| item.key.client_id == client_id)
        .filter(|item| item.settlement == Settlement::Pending)
        .filter(|item| seen.insert(item.key))
        .collect()
}

/// The line of an item: "Training session 2026-12-01" at the price (0.00
/// when the appointment has none), in the province of supply (`studio`: the
/// province of the item's studio, when it has one).
pub(crate) fn line_for(item: &Billable, studio: Option<Province>, trainer: Province) -> DraftLine {
    DraftLine {
        key: item.key,
        description: format!("{} {}", item.key.charge.label(), item.local_date),
        unit_price: item.amount.unwrap_or(Decimal::ZERO),
        province: province_of_supply(studio, trainer),
    }
}

/// What scheduling is told about the appointments an invoice bills when a
/// payment or refund moves the invoice from `before` to `after` (stored
/// statuses): PAID when it becomes paid, REFUNDED when a refund takes it
/// out of paid; nothing otherwise.
pub(crate) fn participant_status(before: &str, after: &str) -> Option<&'static str> {
    match (before == "paid", after == "paid") {
        (false, true) => Some("paid"),
        (true, false) => Some("refunded"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(appointment: u128, client: u128, charge: Charge, amount: &str) -> Billable {
        Billable {
            key: ItemKey {
                appointment_id: Uuid::from_u128(appointment),
                client_id: Uuid::from_u128(client),
                charge,
            },
            amount: amount.parse().ok(),
            local_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            studio_id: None,
            settlement: Settlement::Pending,
        }
    }

    #[test]
    fn charges_round_trip_through_their_stored_form() {
        for charge in [Charge::Session, Charge::LateCancel, Charge::NoShow] {
            assert_eq!(Charge::parse(charge.as_str()), Some(charge));
        }
        assert_eq!(Charge::parse("refund"), None);
    }

    #[test]
    fn only_the_clients_pending_items_are_candidates_each_once_in_the_order_listed() {
        let zoe = 10;
        let listed = vec![
            item(3, zoe, Charge::LateCancel, "30"),
            item(2, 11, Charge::Session, "85"),
            item(1, zoe, Charge::Session, "85"),
            Billable {
                settlement: Settlement::Settled,
                ..item(5, zoe, Charge::Session, "85")
            },
            item(3, zoe, Charge::LateCancel, "30"),
            // The same appointment and client under another charge is
            // another item.
            item(1, zoe, Charge::NoShow, "45"),
        ];
        let picked: Vec<(u128, Charge)> = candidates(&listed, Uuid::from_u128(zoe))
            .iter()
            .map(|item| (item.key.appointment_id.as_u128(), item.key.charge))
            .collect();
        assert_eq!(
            picked,
            vec![
                (3, Charge::LateCancel),
                (1, Charge::Session),
                (1, Charge::NoShow)
            ]
        );
    }

    #[test]
    fn a_line_names_the_charge_and_date_at_the_price_in_the_province_of_supply() {
        let late = item(3, 10, Charge::LateCancel, "30");
        let line = line_for(&late, None, Province::On);
        assert_eq!(line.description, "Late cancellation fee 2026-12-01");
        assert_eq!(line.unit_price, Decimal::from(30));
        assert_eq!(line.province, Province::On);
        assert_eq!(line.key, late.key);
        let at_studio = line_for(&late, Some(Province::Qc), Province::On);
        assert_eq!(at_studio.province, Province::Qc);
        let unpriced = line_for(&item(4, 10, Charge::Session, ""), None, Province::Ab);
        assert_eq!(unpriced.unit_price, Decimal::ZERO);
        assert_eq!(unpriced.description, "Training session 2026-12-01");
        assert_eq!(
            line_for(&item(5, 10, Charge::NoShow, "45.50"), None, Province::Bc).description,
            "No-show fee 2026-12-01"
        );
    }

    #[test]
    fn the_studios_province_wins_over_the_trainers() {
        assert_eq!(
            province_of_supply(Some(Province::Ns), Province::On),
            Province::Ns
        );
        assert_eq!(province_of_supply(None, Province::On), Province::On);
    }

    #[test]
    fn scheduling_hears_paid_on_becoming_paid_and_refunded_on_leaving_it() {
        assert_eq!(participant_status("issued", "paid"), Some("paid"));
        assert_eq!(participant_status("overdue", "paid"), Some("paid"));
        assert_eq!(participant_status("partially_paid", "paid"), Some("paid"));
        assert_eq!(
            participant_status("paid", "partially_paid"),
            Some("refunded")
        );
        assert_eq!(participant_status("paid", "issued"), Some("refunded"));
        assert_eq!(participant_status("issued", "partially_paid"), None);
        assert_eq!(participant_status("partially_paid", "issued"), None);
        assert_eq!(participant_status("paid", "paid"), None);
    }
}
