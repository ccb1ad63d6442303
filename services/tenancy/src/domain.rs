//! Tenancy's validated values and its pure rules: trainer and studio
//! profiles, contract states, rate versions and the dates they may take.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::formats::Province;

pub mod search;

/// Deepest a studio chain or a team may be (the top counts as level 1).
pub const MAX_TREE_DEPTH: usize = 4;

/// How a trainer is registered for sales tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupplierStatus {
    /// Registered for GST/HST (and QST).
    Registered,
    /// A small supplier, not registered.
    SmallSupplier,
}

impl SupplierStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            SupplierStatus::Registered => "registered",
            SupplierStatus::SmallSupplier => "small_supplier",
        }
    }

    /// From its stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "registered" => Some(SupplierStatus::Registered),
            "small_supplier" => Some(SupplierStatus::SmallSupplier),
            _ => None,
        }
    }
}

/// What every invoice of a trainer prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxProfile {
    /// Registered or small supplier.
    pub supplier_status: SupplierStatus,
    /// The RT program account, when registered.
    pub gst_hst_number: Option<String>,
    /// The QST number, when registered in Quebec.
    pub qst_number: Option<String>,
}

impl TaxProfile {
    /// The cross-field rules, given the trainer's province of business: a
    /// registrant has a GST/HST number, and a QST number in Quebec; a small
    /// supplier has neither. Returns the field (under `tax_profile.`) and
    /// what is wrong.
    pub fn problems(&self, province: Province) -> Vec<(&'static str, &'static str)> {
        let mut problems = Vec::new();
        match self.supplier_status {
            SupplierStatus::Registered => {
                if self.gst_hst_number.is_none() {
                    problems.push(("gst_hst_number", "is required for a registrant"));
                }
                if province == Province::Qc && self.qst_number.is_none() {
                    problems.push(("qst_number", "is required for a registrant in Quebec"));
                }
            }
            SupplierStatus::SmallSupplier => {
                if self.gst_hst_number.is_some() {
                    problems.push(("gst_hst_number", "must be empty for a small supplier"));
                }
                if self.qst_number.is_some() {
                    problems.push(("qst_number", "must be empty for a small supplier"));
                }
            }
        }
        problems
    }
}

/// A Canadian bank account; sealed as JSON, wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct BankAccount {
    /// The holder's name.
    pub holder_name: String,
    /// 3 digits.
    pub institution_number: String,
    /// 5 digits.
    pub transit_number: String,
    /// 7 to 12 digits.
    pub account_number: String,
}

// Bank details never reach a log.
impl std::fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BankAccount(<redacted>)")
    }
}

/// A trainer's profile as stored (without the sealed bank account).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerProfile {
    /// Invoice name.
    pub business_name: String,
    /// Licence or certification.
    pub license_number: String,
    /// Specializations.
    pub specializations: Vec<String>,
    /// Biography.
    pub bio: String,
    /// Default hourly rate (CAD).
    pub hourly_rate: Option<Decimal>,
    /// Team-lead commission (percent).
    pub commission_rate: Option<Decimal>,
    /// IANA zone.
    pub time_zone: String,
    /// Province of business.
    pub province: Province,
    /// Free settings.
    pub settings: BTreeMap<String, String>,
    /// Tax registration.
    pub tax_profile: Option<TaxProfile>,
}

/// A studio's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudioStatus {
    /// Open.
    Active,
    /// Closed for now.
    Inactive,
}

impl StudioStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StudioStatus::Active => "active",
            StudioStatus::Inactive => "inactive",
        }
    }

    /// From its stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "active" => Some(StudioStatus::Active),
            "inactive" => Some(StudioStatus::Inactive),
            _ => None,
        }
    }
}

/// A postal address in Canada.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Street lines.
    pub street: String,
    /// City.
    pub city: String,
    /// Province.
    pub province: Province,
    /// Normalised "A1A 1A1".
    pub postal_code: String,
}

/// When and how a studio pays (names as stored; `None` when not set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PaymentTerms {
    /// `weekly`, `biweekly` or `monthly`.
    pub frequency: Option<&'static str>,
    /// Net days.
    pub net_days: Option<i32>,
    /// `direct_deposit`, `e_transfer` or `cheque`.
    pub method: Option<&'static str>,
}

/// A studio's profile as stored (without the sealed bank account).
#[derive(Debug, Clone, PartialEq)]
pub struct StudioProfile {
    /// The studio above it, if any.
    pub parent_studio_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Business number (empty when not given).
    pub business_number: String,
    /// Address.
    pub address: Address,
    /// Phone.
    pub phone: String,
    /// Email.
    pub email: String,
    /// Website.
    pub website: String,
    /// IANA zone.
    pub time_zone: String,
    /// Payment terms.
    pub payment_terms: PaymentTerms,
    /// Free settings.
    pub settings: BTreeMap<String, String>,
    /// Headquarters of its chain.
    pub is_headquarters: bool,
    /// Invoices go to the headquarters.
    pub billing_consolidated: bool,
    /// State.
    pub status: StudioStatus,
}

/// A contract's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractState {
    /// Offered, not answered.
    Invited,
    /// Accepted.
    Active,
    /// Declined or withdrawn.
    Declined,
    /// Ended from a date.
    Ended,
}

impl ContractState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractState::Invited => "invited",
            ContractState::Active => "active",
            ContractState::Declined => "declined",
            ContractState::Ended => "ended",
        }
    }

    /// From its stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "invited" => Some(ContractState::Invited),
            "active" => Some(ContractState::Active),
            "declined" => Some(ContractState::Declined),
            "ended" => Some(ContractState::Ended),
            _ => None,
        }
    }
}

/// Why a contract or rate change is refused, before any row is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractRefusal {
    /// The state does not allow it.
    WrongState,
    /// The date lies before today (studio's zone) or outside the contract.
    Backdated,
}

/// The state an invitation moves to when the trainer answers.
pub fn answer(state: ContractState, accept: bool) -> Result<ContractState, ContractRefusal> {
    match (state, accept) {
        (ContractState::Invited, true) => Ok(ContractState::Active),
        (ContractState::Invited, false) => Ok(ContractState::Declined),
        _ => Err(ContractRefusal::WrongState),
    }
}

/// What ending a contract does: an unanswered invitation is withdrawn
/// (declined, no end date); an accepted contract ends on `end_date`, which
/// may not lie before today or its start.
pub fn end(
    state: ContractState,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(ContractState, Option<NaiveDate>), ContractRefusal> {
    match state {
        ContractState::Invited => Ok((ContractState::Declined, None)),
        ContractState::Active => {
            let end_date = end_date.ok_or(ContractRefusal::Backdated)?;
            if end_date < today || end_date < start_date {
                return Err(ContractRefusal::Backdated);
            }
            Ok((ContractState::Ended, Some(end_date)))
        }
        ContractState::Declined | ContractState::Ended => Err(ContractRefusal::WrongState),
    }
}

/// Whether a rate version may take effect on `effective`: the contract is
/// invited or active, and the date is today or later and within it.
pub fn rate_version_allowed(
    state: ContractState,
    start_date: NaiveDate,
    effective: NaiveDate,
    today: NaiveDate,
) -> Result<(), ContractRefusal> {
    if !matches!(state, ContractState::Invited | ContractState::Active) {
        return Err(ContractRefusal::WrongState);
    }
    if effective < today || effective < start_date {
        return Err(ContractRefusal::Backdated);
    }
    Ok(())
}

/// The rates of a contract from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    /// Per group class.
    pub group: Decimal,
    /// Per individual session.
    pub individual: Decimal,
    /// Per trial session.
    pub trial: Decimal,
    /// Studio's commission, percent.
    pub commission: Decimal,
}

/// A class category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassCategory {
    /// Group class.
    Group,
    /// One-to-one.
    Individual,
    /// Trial.
    Trial,
}

impl Rates {
    /// The rate for one class of `category`.
    pub fn for_category(&self, category: ClassCategory) -> Decimal {
        match category {
            ClassCategory::Group => self.group,
            ClassCategory::Individual => self.individual,
            ClassCategory::Trial => self.trial,
        }
    }
}

/// Whether moving `studio` under `new_parent` keeps its chain a tree no
/// deeper than [`MAX_TREE_DEPTH`]: `parent_chain` lists `new_parent` and the
/// studios above it (nearest first), `subtree_height` is how many levels the
/// studio and its locations span (1 for a studio with none).
pub fn chain_allows(studio: Option<Uuid>, parent_chain: &[Uuid], subtree_height: usize) -> bool {
    let no_cycle = studio.is_none_or(|studio| !parent_chain.contains(&studio));
    no_cycle && parent_chain.len() + subtree_height <= MAX_TREE_DEPTH
}

/// Whose token claims a team change makes stale: the leaders above the
/// member (`chain` is the member and every leader above it, nearest first,
/// as it was for a leave or is for a join). A leader's `sup` lists every
/// trainer below them, so each gains or loses the member and the member's
/// own team; the member's `sup` lists only those below the member, which the
/// move leaves as they were.
pub fn team_change_stale(chain: &[Uuid]) -> Vec<Uuid> {
    distinct(chain.iter().skip(1).copied())
}

/// Whose token claims a studio change makes stale: the owners of the studio
/// and of every studio above it, before and after the change (a user's
/// `studios` lists the studios they own and every location below them, so
/// each of these owners gains or loses the studio and its locations).
pub fn studio_change_stale(owners_before: &[Uuid], owners_after: &[Uuid]) -> Vec<Uuid> {
    distinct(owners_before.iter().chain(owners_after).copied())
}

fn distinct(users: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut users: Vec<Uuid> = users.collect();
    users.sort_unstable();
    users.dedup();
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_change_makes_the_leaders_above_the_member_stale_not_the_member() {
        let (member, lead, top) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut expected = vec![lead, top];
        expected.sort_unstable();
        assert_eq!(team_change_stale(&[member, lead, top]), expected);
        assert!(team_change_stale(&[member]).is_empty());
    }

    #[test]
    fn a_studio_change_makes_every_owner_up_both_chains_stale_once() {
        let (owner, old_chain, new_chain) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut expected = vec![owner, old_chain, new_chain];
        expected.sort_unstable();
        assert_eq!(
            studio_change_stale(&[owner, old_chain, owner], &[owner, new_chain]),
            expected
        );
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn only_an_invitation_can_be_accepted_or_declined() {
        assert_eq!(
            answer(ContractState::Invited, true),
            Ok(ContractState::Active)
        );
        assert_eq!(
            answer(ContractState::Invited, false),
            Ok(ContractState::Declined)
        );
        for state in [
            ContractState::Active,
            ContractState::Declined,
            ContractState::Ended,
        ] {
            assert_eq!(answer(state, true), Err(ContractRefusal::WrongState));
        }
    }

    #[test]
    fn ending_an_invitation_withdraws_it_and_an_active_contract_ends_from_today_on() {
        let start = date("2026-11-01");
        let today = date("2026-11-28");
        assert_eq!(
            end(ContractState::Invited, start, None, today),
            Ok((ContractState::Declined, None))
        );
        assert_eq!(
            end(ContractState::Active, start, Some(today), today),
            Ok((ContractState::Ended, Some(today)))
        );
        assert_eq!(
            end(
                ContractState::Active,
                start,
                Some(date("2026-11-27")),
                today
            ),
            Err(ContractRefusal::Backdated)
        );
        assert_eq!(
            end(ContractState::Active, start, None, today),
            Err(ContractRefusal::Backdated)
        );
        assert_eq!(
            end(ContractState::Ended, start, Some(today), today),
            Err(ContractRefusal::WrongState)
        );
    }

    #[test]
    fn a_rate_version_never_takes_effect_in_the_past() {
        let start = date("2026-11-01");
        let today = date("2026-11-28");
        assert!(rate_version_allowed(ContractState::Active, start, today, today).is_ok());
        assert_eq!(
            rate_version_allowed(ContractState::Active, start, date("2026-11-15"), today),
            Err(ContractRefusal::Backdated)
        );
        let future_start = date("2027-01-01");
        assert_eq!(
            rate_version_allowed(
                ContractState::Invited,
                future_start,
                date("2026-12-01"),
                today
            ),
            Err(ContractRefusal::Backdated)
        );
        assert_eq!(
            rate_version_allowed(ContractState::Ended, start, today, today),
            Err(ContractRefusal::WrongState)
        );
    }

    #[test]
    fn a_chain_refuses_cycles_and_depth_beyond_four_levels() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(chain_allows(None, &[], 1));
        assert!(chain_allows(Some(c), &[b, a], 1));
        assert!(
            !chain_allows(Some(a), &[c, b, a], 1),
            "a under its own location"
        );
        assert!(chain_allows(Some(c), &[b, a], 2));
        assert!(!chain_allows(Some(c), &[b, a], 3), "five levels");
    }

    #[test]
    fn a_registrant_in_quebec_needs_both_numbers_and_a_small_supplier_none() {
        let registered = TaxProfile {
            supplier_status: SupplierStatus::Registered,
            gst_hst_number: Some("123456782RT0001".into()),
            qst_number: None,
        };
        assert!(registered.problems(Province::On).is_empty());
        assert_eq!(registered.problems(Province::Qc).len(), 1);
        let small = TaxProfile {
            supplier_status: SupplierStatus::SmallSupplier,
            gst_hst_number: Some("123456782RT0001".into()),
            qst_number: None,
        };
        assert_eq!(small.problems(Province::On).len(), 1);
    }

    #[test]
    fn bank_accounts_never_print_their_numbers() {
        let account = BankAccount {
            holder_name: "Ana".into(),
            institution_number: "001".into(),
            transit_number: "12345".into(),
            account_number: "7654321".into(),
        };
        assert!(!format!("{account:?}").contains("7654321"));
    }
}
