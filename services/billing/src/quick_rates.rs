//! The quick method's published rates as operators keep them: read them,
//! and add a version (audited in the same transaction). A rate a past date
//! has never changes; [`admit`] is that rule, pure and unit-tested.

use chrono::{Duration, NaiveDate, Utc};
use fitflow_auth::{Principal, Role};
use fitflow_outbox::{Action, AuditEventBuilder};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::rates::{TaxTable, commit, user};
use crate::repo::{self, QuickRateVersion};
use crate::{BillingError, SERVICE};

/// A quick-method rate version to add (validated).
#[derive(Debug, Clone)]
pub(crate) struct NewQuickRate {
    /// "gst_hst" or "qst".
    pub kind: &'static str,
    /// "NP", "ON", "NB", "NL", "NS", "PE" or "QC".
    pub establishment_region: &'static str,
    pub supply_region: &'static str,
    pub percent: Decimal,
    pub valid_from: NaiveDate,
    pub source: String,
}

/// What adding a version from `from` does to the versions of its key
/// (`(valid_from, valid_until)` each, any order), on `today`: `Ok(Some(i))`
/// ends version `i` the day before; `Ok(None)` ends nothing. Refused when it
/// would change the rate of a date that has one: with a version in force,
/// the new one starts today or later and after that version's start; with
/// none, after the last version ended.
pub(crate) fn admit(
    versions: &[(NaiveDate, Option<NaiveDate>)],
    from: NaiveDate,
    today: NaiveDate,
) -> Result<Option<usize>, BillingError> {
    if let Some(open) = versions.iter().position(|(_, until)| until.is_none()) {
        let (open_from, _) = versions[open];
        return if from >= today && from > open_from {
            Ok(Some(open))
        } else {
            Err(BillingError::TaxRateNotLater)
        };
    }
    match versions.iter().filter_map(|(_, until)| *until).max() {
        Some(last_until) if from <= last_until => Err(BillingError::TaxRateNotLater),
        _ => Ok(None),
    }
}

impl TaxTable {
    /// Every version of every quick-method rate.
    pub(crate) async fn quick_rates(
        &self,
        principal: &Principal,
    ) -> Result<Vec<QuickRateVersion>, BillingError> {
        let mut tx = fitflow_db::tx(self.pool(), &user(principal)).await?;
        let rows = repo::quick_rate_versions(&mut tx).await?;
        fitflow_db::end_read(tx);
        Ok(rows)
    }

    /// Adds a quick-method rate version (operators, MFA); returns it and
    /// the version it ended, if any.
    pub(crate) async fn add_quick_rate(
        &self,
        principal: &Principal,
        new: NewQuickRate,
    ) -> Result<(QuickRateVersion, Option<QuickRateVersion>), BillingError> {
        principal.require_role(Role::Operator)?;
        let key = (new.kind, new.establishment_region, new.supply_region);
        let mut tx = fitflow_db::tx(self.pool(), &user(principal)).await?;
        // One writer per key at a time: two versions never both pass `admit`.
        repo::lock_quick_key(&mut tx, key).await?;
        let versions = repo::quick_rate_versions_of(&mut tx, key).await?;
        let spans: Vec<(NaiveDate, Option<NaiveDate>)> = versions
            .iter()
            .map(|version| (version.valid_from, version.valid_until))
            .collect();
        let ended =
            admit(&spans, new.valid_from, Utc::now().date_naive())?.map(|index| versions[index].id);
        if let Some(ended) = ended {
            repo::end_quick_rate(&mut tx, ended, new.valid_from - Duration::days(1)).await?;
        }
        let id = Uuid::now_v7();
        repo::insert_quick_rate(&mut tx, id, &new, principal.user_id).await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Create, "quick_method_rates", id)
            .actor_user(principal.user_id)
            .change("kind", "", new.kind)
            .change("establishment_region", "", new.establishment_region)
            .change("supply_region", "", new.supply_region)
            .change("percent", "", &new.percent.to_string())
            .change("valid_from", "", &new.valid_from.to_string());
        if let Some(ended) = ended {
            event = event.change("ends", "", &ended.to_string());
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let added = repo::quick_rate_version(&mut tx, id)
            .await?
            .ok_or(BillingError::Corrupt("quick-method rate just added"))?;
        let ended = match ended {
            Some(id) => repo::quick_rate_version(&mut tx, id).await?,
            None => None,
        };
        commit(tx).await?;
        Ok((added, ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(date: &str) -> NaiveDate {
        date.parse().unwrap()
    }

    #[test]
    fn a_new_version_ends_the_one_in_force_only_from_today_on() {
        let versions = [(d("2010-07-01"), None)];
        let today = d("2026-11-29");
        assert_eq!(admit(&versions, d("2026-12-01"), today).unwrap(), Some(0));
        assert_eq!(admit(&versions, today, today).unwrap(), Some(0));
        assert!(matches!(
            admit(&versions, d("2026-11-28"), today),
            Err(BillingError::TaxRateNotLater)
        ));
    }

    #[test]
    fn a_gap_after_the_last_version_ended_may_be_filled_even_in_the_past() {
        // Nova Scotia: 10% while HST was 15%, nothing yet for 14%.
        let versions = [(d("2010-07-01"), Some(d("2025-03-31")))];
        let today = d("2026-11-29");
        assert_eq!(admit(&versions, d("2025-04-01"), today).unwrap(), None);
        assert!(matches!(
            admit(&versions, d("2025-03-31"), today),
            Err(BillingError::TaxRateNotLater)
        ));
        // A key with no version at all (a supply in another region).
        assert_eq!(admit(&[], d("2008-01-01"), today).unwrap(), None);
    }

    #[test]
    fn the_version_in_force_is_found_whatever_the_order() {
        let versions = [
            (d("2020-01-01"), None),
            (d("2010-01-01"), Some(d("2019-12-31"))),
        ];
        let today = d("2026-11-29");
        assert_eq!(admit(&versions, d("2027-01-01"), today).unwrap(), Some(0));
        assert!(admit(&versions, d("2015-01-01"), today).is_err());
    }
}
