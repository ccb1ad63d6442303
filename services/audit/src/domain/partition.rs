//! Month partitions: which exist ahead of time, what they are called, and
//! when one is past retention.

use chrono::{DateTime, Datelike as _, Months, NaiveDate, Utc};

use super::Log;

/// The first day of the month that `at` falls in (UTC).
pub fn month_start(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive().with_day(1).unwrap_or(NaiveDate::MIN)
}

/// The months whose partitions should exist at `now`: this one and the next two.
pub fn partition_months(now: DateTime<Utc>) -> [NaiveDate; 3] {
    let this_month = month_start(now);
    let add = |months| {
        this_month
            .checked_add_months(Months::new(months))
            .unwrap_or(this_month)
    };
    [this_month, add(1), add(2)]
}

/// The name of `log`'s partition for the month starting `month`, e.g. `audit_log_y2026m03`.
pub fn partition_name(log: Log, month: NaiveDate) -> String {
    format!("{}_y{:04}m{:02}", log.table(), month.year(), month.month())
}

/// The month a partition named `<table>_yYYYYmMM` holds, or `None` for any
/// other name (the DEFAULT partition, say).
pub fn partition_month(name: &str) -> Option<(Log, NaiveDate)> {
    Log::ALL.into_iter().find_map(|log| {
        let suffix = name.strip_prefix(log.table())?.strip_prefix("_y")?;
        let (year, month) = suffix.split_once('m')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
        Some((log, date))
    })
}

/// Whether the partition of the month starting `month` is past retention at
/// `now`: its whole month ended at least `retention_months` months before the
/// start of the current month.
pub fn past_retention(month: NaiveDate, now: DateTime<Utc>, retention_months: u32) -> bool {
    let Some(cutoff) = month_start(now).checked_sub_months(Months::new(retention_months)) else {
        return false;
    };
    month
        .checked_add_months(Months::new(1))
        .is_some_and(|month_end| month_end <= cutoff)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::domain::test_support::now;

    #[test]
    fn partitions_are_named_by_year_and_month_for_this_and_the_next_two_months() {
        let months = partition_months(
            Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
                .single()
                .expect("time"),
        );
        let names: Vec<_> = months
            .iter()
            .map(|month| partition_name(Log::Audit, *month))
            .collect();
        assert_eq!(
            names,
            [
                "audit_log_y2026m11",
                "audit_log_y2026m12",
                "audit_log_y2027m01"
            ]
        );
        assert_eq!(
            partition_name(Log::Access, months[0]),
            "access_log_y2026m11"
        );
    }

    #[test]
    fn partition_names_parse_back_to_their_month_and_others_do_not() {
        let march = NaiveDate::from_ymd_opt(2019, 3, 1).expect("date");
        assert_eq!(
            partition_month(&partition_name(Log::Access, march)),
            Some((Log::Access, march))
        );
        assert_eq!(partition_month("audit_log_default"), None);
        assert_eq!(partition_month("audit_log_y2019m13"), None);
        assert_eq!(partition_month("ingested_events"), None);
    }

    #[test]
    fn a_partition_is_past_retention_once_its_whole_month_is_older_than_the_period() {
        let date = |y, m| NaiveDate::from_ymd_opt(y, m, 1).expect("date");
        // now() is 2026-11-28; 72 months back from 2026-11-01 is 2020-11-01.
        assert!(past_retention(date(2020, 10), now(), 72));
        assert!(!past_retention(date(2020, 11), now(), 72));
        assert!(!past_retention(date(2026, 11), now(), 72));
        assert!(past_retention(date(2026, 10), now(), 0));
    }
}
