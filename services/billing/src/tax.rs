//! Canadian sales tax, computed from a table of rates (data with effective
//! dates, never constants in code): per (province, tax) on the taxable
//! subtotal of the lines supplied in that province, rounded half away from
//! zero to the cent once per tax line (DESIGN.md §6). Pure: no I/O.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use rust_decimal::{Decimal, RoundingStrategy};

/// A kind of sales tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaxKind {
    /// Goods and Services Tax (federal).
    Gst,
    /// Harmonized Sales Tax (federal and provincial in one; replaces GST).
    Hst,
    /// Quebec Sales Tax.
    Qst,
    /// Provincial Sales Tax (British Columbia, Saskatchewan).
    Pst,
    /// Retail Sales Tax (Manitoba).
    Rst,
}

impl TaxKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            TaxKind::Gst => "GST",
            TaxKind::Hst => "HST",
            TaxKind::Qst => "QST",
            TaxKind::Pst => "PST",
            TaxKind::Rst => "RST",
        }
    }

    /// The stored form read back.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "GST" => Some(TaxKind::Gst),
            "HST" => Some(TaxKind::Hst),
            "QST" => Some(TaxKind::Qst),
            "PST" => Some(TaxKind::Pst),
            "RST" => Some(TaxKind::Rst),
            _ => None,
        }
    }

    /// Whether the tax is federal (GST/HST, remitted to the CRA) rather
    /// than provincial.
    pub fn is_federal(self) -> bool {
        matches!(self, TaxKind::Gst | TaxKind::Hst)
    }
}

/// One row of the tax table: a rate in force from `from` until `until`
/// (inclusive; open-ended when `None`) in `province` (`None`: every
/// province, as GST is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRate {
    /// Where it applies; `None` for the federal GST.
    pub province: Option<Province>,
    /// Which tax.
    pub kind: TaxKind,
    /// The rate in percent (e.g. 9.975).
    pub percent: Decimal,
    /// First day in force.
    pub from: NaiveDate,
    /// Last day in force.
    pub until: Option<NaiveDate>,
    /// Whether it applies to personal-training services.
    pub applies_to_services: bool,
}

impl TaxRate {
    fn in_force(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|until| date <= until)
    }
}

/// How a line is taxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Taxed at the rates in force.
    Taxable,
    /// Taxable at 0% (counts as a taxable supply; no tax).
    ZeroRated,
    /// Not a taxable supply.
    Exempt,
}

/// An invoice line as tax sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Its amount before tax (negative on a credit note).
    pub amount: Decimal,
    /// The province of supply.
    pub province: Province,
    /// How it is taxed.
    pub treatment: Treatment,
}

/// One tax of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxLine {
    /// The province of supply.
    pub province: Province,
    /// Which tax.
    pub kind: TaxKind,
    /// The rate applied, in percent.
    pub percent: Decimal,
    /// The taxable subtotal it is computed on.
    pub base: Decimal,
    /// The tax, rounded to the cent.
    pub amount: Decimal,
}

/// Why tax cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    /// The table has no GST or HST for this province on this date.
    #[error("no federal rate in force in {province:?} on {date}")]
    NoFederalRate {
        /// The province.
        province: Province,
        /// The tax point.
        date: NaiveDate,
    },
    /// Two rows of one tax overlap on this date (a broken table).
    #[error("two {kind:?} rates in force in {province:?} on {date}")]
    Ambiguous {
        /// The province.
        province: Province,
        /// The tax.
        kind: TaxKind,
        /// The tax point.
        date: NaiveDate,
    },
}

/// `value` rounded to the cent, half away from zero.
pub fn to_cent(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The rates of `province` in force on `date` that apply to services:
/// HST alone where there is one, else GST and any provincial tax.
pub fn rates_for(
    table: &[TaxRate],
    province: Province,
    date: NaiveDate,
) -> Result<Vec<&TaxRate>, TaxError> {
    let mut found: BTreeMap<TaxKind, &TaxRate> = BTreeMap::new();
    for rate in table
        .iter()
        .filter(|rate| rate.in_force(date) && rate.province.is_none_or(|only| only == province))
    {
        if found.insert(rate.kind, rate).is_some() {
            return Err(TaxError::Ambiguous {
                province,
                kind: rate.kind,
                date,
            });
        }
    }
    if found.contains_key(&TaxKind::Hst) {
        found.remove(&TaxKind::Gst);
    }
    if !found.contains_key(&TaxKind::Hst) && !found.contains_key(&TaxKind::Gst) {
        return Err(TaxError::NoFederalRate { province, date });
    }
    Ok(found
        .into_values()
        .filter(|rate| rate.kind.is_federal() || rate.applies_to_services)
        .collect())
}

/// The taxes of an invoice dated `date` (its tax point) with `lines`, for an
/// issuer `registered` for GST/HST (a small supplier who is not charges
/// none): one line per (province, tax), in province then tax order.
pub fn compute(
    table: &[TaxRate],
    date: NaiveDate,
    lines: &[Line],
    registered: bool,
) -> Result<Vec<TaxLine>, TaxError> {
    if !registered {
        return Ok(Vec::new());
    }
    let mut bases: BTreeMap<&'static str, (Province, Decimal)> = BTreeMap::new();
    for line in lines
        .iter()
        .filter(|line| line.treatment == Treatment::Taxable)
    {
        let entry = bases
            .entry(line.province.code())
            .or_insert((line.province, Decimal::ZERO));
        entry.1 += line.amount;
    }
    let mut taxes = Vec::new();
    for (province, base) in bases.into_values() {
        for rate in rates_for(table, province, date)? {
            taxes.push(TaxLine {
                province,
                kind: rate.kind,
                percent: rate.percent,
                base,
                amount: to_cent(base * rate.percent / Decimal::ONE_HUNDRED),
            });
        }
    }
    Ok(taxes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decimal from its literal (no float on the way).
    macro_rules! dec {
        ($($t:tt)+) => {
            stringify!($($t)+)
                .replace(' ', "")
                .parse::<Decimal>()
                .expect("a decimal literal")
        };
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn rate(
        province: Option<Province>,
        kind: TaxKind,
        percent: Decimal,
        from: NaiveDate,
        until: Option<NaiveDate>,
        applies_to_services: bool,
    ) -> TaxRate {
        TaxRate {
            province,
            kind,
            percent,
            from,
            until,
            applies_to_services,
        }
    }

    /// The statutory table as the migration seeds it.
    fn table() -> Vec<TaxRate> {
        use Province::*;
        use TaxKind::*;
        let always = date(2008, 1, 1);
        vec![
            rate(None, Gst, dec!(5), always, None, true),
            rate(Some(On), Hst, dec!(13), date(2010, 7, 1), None, true),
            rate(Some(Nb), Hst, dec!(15), date(2016, 7, 1), None, true),
            rate(Some(Nl), Hst, dec!(15), date(2016, 7, 1), None, true),
            rate(Some(Pe), Hst, dec!(15), date(2016, 10, 1), None, true),
            rate(
                Some(Ns),
                Hst,
                dec!(15),
                date(2010, 7, 1),
                Some(date(2025, 3, 31)),
                true,
            ),
            rate(Some(Ns), Hst, dec!(14), date(2025, 4, 1), None, true),
            rate(Some(Qc), Qst, dec!(9.975), date(2013, 1, 1), None, true),
            rate(Some(Mb), Rst, dec!(7), date(2019, 7, 1), None, false),
            rate(Some(Bc), Pst, dec!(7), date(2013, 4, 1), None, false),
            rate(Some(Sk), Pst, dec!(6), date(2017, 3, 23), None, false),
        ]
    }

    fn taxable(amount: Decimal, province: Province) -> Line {
        Line {
            amount,
            province,
            treatment: Treatment::Taxable,
        }
    }

    /// (province, tax, amount) of a tax line.
    type Amount = (&'static str, &'static str, Decimal);

    fn amounts(taxes: &[TaxLine]) -> Vec<Amount> {
        taxes
            .iter()
            .map(|tax| (tax.province.code(), tax.kind.as_str(), tax.amount))
            .collect()
    }

    #[test]
    fn tax_lines_match_hand_computed_invoices() {
        let day = date(2026, 6, 1);
        let cases: Vec<(&str, Vec<Line>, Vec<Amount>)> = vec![
            (
                "33.33 in Quebec: GST 1.6665 and QST 3.3246675",
                vec![taxable(dec!(33.33), Province::Qc)],
                vec![("QC", "GST", dec!(1.67)), ("QC", "QST", dec!(3.32))],
            ),
            (
                "three lines of 33.33 in Ontario make one HST line on 99.99",
                vec![taxable(dec!(33.33), Province::On); 3],
                vec![("ON", "HST", dec!(13.00))],
            ),
            (
                "0.10 in Alberta: GST 0.005 rounds half away from zero",
                vec![taxable(dec!(0.10), Province::Ab)],
                vec![("AB", "GST", dec!(0.01))],
            ),
            (
                "British Columbia's PST does not apply to personal training",
                vec![taxable(dec!(100), Province::Bc)],
                vec![("BC", "GST", dec!(5.00))],
            ),
            (
                "lines in two provinces are taxed by province",
                vec![
                    taxable(dec!(50), Province::On),
                    taxable(dec!(80), Province::Qc),
                ],
                vec![
                    ("ON", "HST", dec!(6.50)),
                    ("QC", "GST", dec!(4.00)),
                    ("QC", "QST", dec!(7.98)),
                ],
            ),
            (
                "a credit note mirrors the invoice with negative amounts",
                vec![taxable(dec!(-33.33), Province::Qc)],
                vec![("QC", "GST", dec!(-1.67)), ("QC", "QST", dec!(-3.32))],
            ),
            (
                "exempt and zero-rated lines carry no tax",
                vec![
                    Line {
                        amount: dec!(40),
                        province: Province::On,
                        treatment: Treatment::Exempt,
                    },
                    Line {
                        amount: dec!(60),
                        province: Province::On,
                        treatment: Treatment::ZeroRated,
                    },
                    taxable(dec!(10), Province::On),
                ],
                vec![("ON", "HST", dec!(1.30))],
            ),
        ];
        for (case, lines, expected) in cases {
            let taxes = compute(&table(), day, &lines, true).expect(case);
            assert_eq!(amounts(&taxes), expected, "{case}");
        }
    }

    #[test]
    fn nova_scotia_hst_drops_to_fourteen_percent_on_april_first_2025() {
        let lines = [taxable(dec!(100), Province::Ns)];
        let before = compute(&table(), date(2025, 3, 31), &lines, true).unwrap();
        let after = compute(&table(), date(2025, 4, 1), &lines, true).unwrap();
        assert_eq!(amounts(&before), [("NS", "HST", dec!(15.00))]);
        assert_eq!(amounts(&after), [("NS", "HST", dec!(14.00))]);
        assert_eq!(after[0].percent, dec!(14));
    }

    #[test]
    fn a_small_supplier_who_is_not_registered_charges_no_tax() {
        let lines = [taxable(dec!(100), Province::Qc)];
        assert!(
            compute(&table(), date(2026, 1, 1), &lines, false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn rounding_happens_once_per_tax_line_not_per_item() {
        // Per item: 0.65 → 0.0325 → 0.03 each, 0.09 in all; on the subtotal
        // 1.95 → 0.0975 → 0.10.
        let lines = [taxable(dec!(0.65), Province::Ab); 3];
        let taxes = compute(&table(), date(2026, 1, 1), &lines, true).unwrap();
        assert_eq!(amounts(&taxes), [("AB", "GST", dec!(0.10))]);
        assert_eq!(taxes[0].base, dec!(1.95));
    }

    #[test]
    fn a_table_without_a_federal_rate_or_with_overlapping_rows_is_refused() {
        let empty: Vec<TaxRate> = Vec::new();
        assert_eq!(
            compute(
                &empty,
                date(2026, 1, 1),
                &[taxable(dec!(1), Province::Ab)],
                true
            ),
            Err(TaxError::NoFederalRate {
                province: Province::Ab,
                date: date(2026, 1, 1)
            })
        );
        let mut overlapping = table();
        overlapping.push(rate(
            Some(Province::On),
            TaxKind::Hst,
            dec!(15),
            date(2026, 1, 1),
            None,
            true,
        ));
        assert!(matches!(
            compute(
                &overlapping,
                date(2026, 1, 1),
                &[taxable(dec!(1), Province::On)],
                true
            ),
            Err(TaxError::Ambiguous { .. })
        ));
    }

    #[test]
    fn half_cents_round_away_from_zero_both_ways() {
        assert_eq!(to_cent(dec!(0.005)), dec!(0.01));
        assert_eq!(to_cent(dec!(-0.005)), dec!(-0.01));
        assert_eq!(to_cent(dec!(0.0049)), dec!(0.00));
        assert_eq!(to_cent(dec!(2.675)), dec!(2.68));
    }
}
