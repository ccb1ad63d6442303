//! The figures of a sales-tax remittance (a GST/HST or QST return) for one
//! reporting period, from the tax lines of the issued invoices and credit
//! notes dated in it: revenue, taxable revenue, tax collected, and the net
//! tax once the input tax credits are taken off — or, under the quick
//! method, the published remittance rate times the tax-included revenue.
//! Amounts are rounded half away from zero to the cent once per rate
//! (DESIGN.md §6). Pure: no I/O.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use rust_decimal::Decimal;

use crate::tax::{TaxKind, to_cent};

/// The most taxable supplies (CAD, the four quarters ending with the
/// period) a registrant may have and still use the quick method: the
/// Streamlined Accounting (GST/HST) Regulations, s. 19, and the QST
/// regulation's equivalent, both $400,000.
pub const QUICK_METHOD_LIMIT: Decimal = Decimal::from_parts(400_000, 0, 0, false, 0);

/// The quick method's credit: 1% of the first $30,000 of the fiscal year's
/// eligible (tax-included) supplies — the Streamlined Accounting (GST/HST)
/// Regulations, s. 15(3), and the QST regulation's equivalent.
pub const QUICK_CREDIT_PERCENT: Decimal = Decimal::from_parts(1, 0, 0, false, 0);
/// The supplies of a fiscal year the quick method's credit applies to.
pub const QUICK_CREDIT_CEILING: Decimal = Decimal::from_parts(30_000, 0, 0, false, 0);

/// What is left of the fiscal year's credit ceiling after `earlier`, the
/// quick-method bases of the year's earlier periods (never negative).
pub fn quick_credit_room(earlier: Decimal) -> Decimal {
    (QUICK_CREDIT_CEILING - earlier.max(Decimal::ZERO)).max(Decimal::ZERO)
}

/// Which tax a remittance is for, and so to whom it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemittanceKind {
    /// GST and HST, to the Canada Revenue Agency.
    GstHst,
    /// QST, to Revenu Québec.
    Qst,
}

impl RemittanceKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            RemittanceKind::GstHst => "gst_hst",
            RemittanceKind::Qst => "qst",
        }
    }

    /// The stored form read back.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "gst_hst" => Some(RemittanceKind::GstHst),
            "qst" => Some(RemittanceKind::Qst),
            _ => None,
        }
    }

    /// Whether this remittance carries `tax`.
    pub fn remits(self, tax: TaxKind) -> bool {
        match self {
            RemittanceKind::GstHst => matches!(tax, TaxKind::Gst | TaxKind::Hst),
            RemittanceKind::Qst => tax == TaxKind::Qst,
        }
    }

    /// The quick-method region of `province` for this tax: for GST/HST, the
    /// HST province itself or `NP` (a non-participating province, GST
    /// only); for QST, Quebec alone (`None` elsewhere).
    pub fn region(self, province: Province) -> Option<&'static str> {
        match self {
            RemittanceKind::GstHst => Some(match province.code() {
                code @ ("ON" | "NB" | "NL" | "NS" | "PE") => code,
                _ => "NP",
            }),
            RemittanceKind::Qst => (province.code() == "QC").then_some("QC"),
        }
    }
}

/// One tax line of an issued invoice or credit note (negative amounts)
/// dated in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxedSupply {
    /// The document's date (its tax point).
    pub date: NaiveDate,
    /// The province of supply.
    pub province: Province,
    /// The tax.
    pub kind: TaxKind,
    /// The taxable subtotal it was charged on.
    pub base: Decimal,
    /// The tax charged.
    pub amount: Decimal,
}

/// A published quick-method remittance rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickRate {
    /// The tax it remits.
    pub kind: RemittanceKind,
    /// Where the registrant's permanent establishment is (a region).
    pub establishment_region: String,
    /// Where the supplies are made (a region).
    pub supply_region: String,
    /// The rate in percent of tax-included supplies.
    pub percent: Decimal,
    /// First day in force.
    pub from: NaiveDate,
    /// Last day in force; open-ended when `None`.
    pub until: Option<NaiveDate>,
}

impl QuickRate {
    fn applies(
        &self,
        kind: RemittanceKind,
        establishment: &str,
        supply: &str,
        date: NaiveDate,
    ) -> bool {
        self.kind == kind
            && self.establishment_region == establishment
            && self.supply_region == supply
            && self.from <= date
            && self.until.is_none_or(|until| date <= until)
    }
}

/// The quick method as elected: the rate table and where the registrant is
/// established.
#[derive(Debug, Clone, Copy)]
pub struct QuickMethod<'a> {
    /// The published rates.
    pub rates: &'a [QuickRate],
    /// The province of the permanent establishment.
    pub establishment: Province,
    /// What is left of the fiscal year's credit ceiling
    /// ([`quick_credit_room`]).
    pub credit_room: Decimal,
}

/// What a remittance reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    /// The subtotals of every document in the period, whatever their tax.
    pub gross_revenue: Decimal,
    /// The bases this tax was charged on.
    pub taxable_revenue: Decimal,
    /// The tax charged, net of credit notes.
    pub tax_collected: Decimal,
    /// The credits claimed.
    pub input_tax_credits: Decimal,
    /// Tax collected (or the quick-method remittance) less the credits;
    /// negative when a refund is claimed.
    pub net_tax: Decimal,
    /// Under the quick method: the tax-included revenue and the rates
    /// applied to it.
    pub quick: Option<QuickFigures>,
}

/// The quick method's part of a remittance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickFigures {
    /// The tax-included revenue the rates apply to.
    pub base: Decimal,
    /// The rates times the base, each product rounded to the cent.
    pub remittance: Decimal,
    /// The 1% credit on the part of the base within the year's first
    /// $30,000, rounded to the cent; taken off the remittance.
    pub credit: Decimal,
}

/// Why the figures cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnError {
    /// The quick-method table has no rate for supplies in this province
    /// from the establishment on this date.
    #[error("no quick-method rate for supplies in {province:?} on {date}")]
    RateMissing {
        /// The province of supply.
        province: Province,
        /// The document's date.
        date: NaiveDate,
    },
}

/// What a tax line adds to the quick method's tax-included base: the supply
/// and its GST/HST for a GST/HST return; for a QST return, the supply and
/// its QST, plus the GST charged on Quebec supplies (Revenu Québec's base
/// includes both taxes, the CRA's the GST/HST only).
fn quick_contribution(kind: RemittanceKind, supply: &TaxedSupply) -> Option<Decimal> {
    match kind {
        RemittanceKind::GstHst if kind.remits(supply.kind) => Some(supply.base + supply.amount),
        RemittanceKind::Qst if supply.kind == TaxKind::Qst => Some(supply.base + supply.amount),
        RemittanceKind::Qst if supply.kind == TaxKind::Gst && supply.province.code() == "QC" => {
            Some(supply.amount)
        }
        _ => None,
    }
}

/// The figures of a `kind` remittance: `gross_revenue` (the documents'
/// subtotals), their tax lines `supplies`, the credits claimed, and the
/// quick method when elected.
pub fn compute(
    kind: RemittanceKind,
    gross_revenue: Decimal,
    supplies: &[TaxedSupply],
    input_tax_credits: Decimal,
    quick: Option<QuickMethod<'_>>,
) -> Result<Figures, ReturnError> {
    let remitted = supplies.iter().filter(|supply| kind.remits(supply.kind));
    let taxable_revenue: Decimal = remitted.clone().map(|supply| supply.base).sum();
    let tax_collected: Decimal = remitted.map(|supply| supply.amount).sum();
    let quick = match quick {
        None => None,
        Some(method) => Some(quick_figures(kind, supplies, method)?),
    };
    let owed = quick
        .as_ref()
        .map_or(tax_collected, |figures| figures.remittance - figures.credit);
    Ok(Figures {
        gross_revenue,
        taxable_revenue,
        tax_collected,
        input_tax_credits,
        net_tax: owed - input_tax_credits,
        quick,
    })
}

fn quick_figures(
    kind: RemittanceKind,
    supplies: &[TaxedSupply],
    method: QuickMethod<'_>,
) -> Result<QuickFigures, ReturnError> {
    let establishment = kind.region(method.establishment);
    // Per rate row (its index in the table): the tax-included sum it
    // applies to, rounded once.
    let mut per_rate: BTreeMap<usize, Decimal> = BTreeMap::new();
    let mut base = Decimal::ZERO;
    for supply in supplies {
        let Some(contribution) = quick_contribution(kind, supply) else {
            continue;
        };
        let missing = ReturnError::RateMissing {
            province: supply.province,
            date: supply.date,
        };
        let (Some(establishment), Some(supply_region)) =
            (establishment, kind.region(supply.province))
        else {
            return Err(missing);
        };
        let index = method
            .rates
            .iter()
            .position(|rate| rate.applies(kind, establishment, supply_region, supply.date))
            .ok_or(missing)?;
        *per_rate.entry(index).or_default() += contribution;
        base += contribution;
    }
    let remittance = per_rate
        .into_iter()
        .map(|(index, sum)| to_cent(sum * method.rates[index].percent / Decimal::ONE_HUNDRED))
        .sum();
    // A negative period (credit notes above sales) earns no credit.
    let eligible = base.max(Decimal::ZERO).min(method.credit_room);
    let credit = to_cent(eligible * QUICK_CREDIT_PERCENT / Decimal::ONE_HUNDRED);
    Ok(QuickFigures {
        base,
        remittance,
        credit,
    })
}

/// Whether a registrant with `annual_taxable_supplies` (the four quarters
/// ending with the period) may use the quick method.
pub fn quick_method_eligible(annual_taxable_supplies: Decimal) -> bool {
    annual_taxable_supplies <= QUICK_METHOD_LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("date")
    }

    fn supply(province: &str, kind: TaxKind, base: &str, tax: &str) -> TaxedSupply {
        TaxedSupply {
            date: date(2026, 5, 15),
            province: Province::from_code(province).expect("province"),
            kind,
            base: amount(base),
            amount: amount(tax),
        }
    }

    fn rate(kind: RemittanceKind, region: &str, percent: &str) -> QuickRate {
        QuickRate {
            kind,
            establishment_region: region.into(),
            supply_region: region.into(),
            percent: amount(percent),
            from: date(2016, 7, 1),
            until: None,
        }
    }

    fn seeded() -> Vec<QuickRate> {
        vec![
            rate(RemittanceKind::GstHst, "NP", "3.6"),
            rate(RemittanceKind::GstHst, "ON", "8.8"),
            rate(RemittanceKind::GstHst, "NB", "10"),
            QuickRate {
                until: Some(date(2025, 3, 31)),
                ..rate(RemittanceKind::GstHst, "NS", "10")
            },
            rate(RemittanceKind::Qst, "QC", "6.6"),
        ]
    }

    struct Case {
        name: &'static str,
        kind: RemittanceKind,
        gross: &'static str,
        supplies: Vec<TaxedSupply>,
        credits: &'static str,
        quick_from: Option<&'static str>,
        // taxable revenue, tax collected, net tax, quick base, quick remittance
        expected: (
            &'static str,
            &'static str,
            &'static str,
            Option<(&'static str, &'static str)>,
        ),
    }

    #[test]
    fn remittances_match_hand_computed_periods() {
        let rates = seeded();
        let cases = vec![
            Case {
                // Ontario: invoices of 1,000.00 and 33.33 (HST 130.00 and
                // 4.33), a credit note of 100.00 (HST −13.00); ITCs 20.55.
                // Collected 130.00 + 4.33 − 13.00 = 121.33; net 100.78.
                name: "ontario hst with a credit note",
                kind: RemittanceKind::GstHst,
                gross: "933.33",
                supplies: vec![
                    supply("ON", TaxKind::Hst, "1000.00", "130.00"),
                    supply("ON", TaxKind::Hst, "33.33", "4.33"),
                    supply("ON", TaxKind::Hst, "-100.00", "-13.00"),
                ],
                credits: "20.55",
                quick_from: None,
                expected: ("933.33", "121.33", "100.78", None),
            },
            Case {
                // Quebec: 200.00 (GST 10.00, QST 19.95) and 33.33 (GST
                // 1.67, QST 3.32). The GST/HST return carries the GST only.
                name: "quebec gst return",
                kind: RemittanceKind::GstHst,
                gross: "233.33",
                supplies: vec![
                    supply("QC", TaxKind::Gst, "200.00", "10.00"),
                    supply("QC", TaxKind::Qst, "200.00", "19.95"),
                    supply("QC", TaxKind::Gst, "33.33", "1.67"),
                    supply("QC", TaxKind::Qst, "33.33", "3.32"),
                ],
                credits: "0",
                quick_from: None,
                expected: ("233.33", "11.67", "11.67", None),
            },
            Case {
                // The same period's QST return, ITRs 5.00: 23.27 − 5.00.
                name: "quebec qst return",
                kind: RemittanceKind::Qst,
                gross: "233.33",
                supplies: vec![
                    supply("QC", TaxKind::Gst, "200.00", "10.00"),
                    supply("QC", TaxKind::Qst, "200.00", "19.95"),
                    supply("QC", TaxKind::Gst, "33.33", "1.67"),
                    supply("QC", TaxKind::Qst, "33.33", "3.32"),
                ],
                credits: "5.00",
                quick_from: None,
                expected: ("233.33", "23.27", "18.27", None),
            },
            Case {
                // Credits above the tax: a refund is claimed.
                name: "a refund when credits exceed the tax",
                kind: RemittanceKind::GstHst,
                gross: "100.00",
                supplies: vec![supply("AB", TaxKind::Gst, "100.00", "5.00")],
                credits: "12.50",
                quick_from: None,
                expected: ("100.00", "5.00", "-7.50", None),
            },
            Case {
                // Quick method in Ontario: 8.8% of (1,000.00 + 130.00 +
                // 33.33 + 4.33) = 8.8% of 1,167.66 = 102.75408 → 102.75;
                // capital ITCs 2.75 → 100.00.
                name: "quick method in ontario",
                kind: RemittanceKind::GstHst,
                gross: "1033.33",
                supplies: vec![
                    supply("ON", TaxKind::Hst, "1000.00", "130.00"),
                    supply("ON", TaxKind::Hst, "33.33", "4.33"),
                ],
                credits: "2.75",
                quick_from: Some("ON"),
                expected: ("1033.33", "134.33", "100.00", Some(("1167.66", "102.75"))),
            },
            Case {
                // Quick method, Quebec establishment, GST: 3.6% of (233.33
                // + 11.67) = 3.6% of 245.00 = 8.82.
                name: "quick method gst in quebec",
                kind: RemittanceKind::GstHst,
                gross: "233.33",
                supplies: vec![
                    supply("QC", TaxKind::Gst, "200.00", "10.00"),
                    supply("QC", TaxKind::Qst, "200.00", "19.95"),
                    supply("QC", TaxKind::Gst, "33.33", "1.67"),
                    supply("QC", TaxKind::Qst, "33.33", "3.32"),
                ],
                credits: "0",
                quick_from: Some("QC"),
                expected: ("233.33", "11.67", "8.82", Some(("245.00", "8.82"))),
            },
            Case {
                // Quick method, QST: 6.6% of (233.33 + 23.27 QST + 11.67
                // GST) = 6.6% of 268.27 = 17.70582 → 17.71.
                name: "quick method qst in quebec",
                kind: RemittanceKind::Qst,
                gross: "233.33",
                supplies: vec![
                    supply("QC", TaxKind::Gst, "200.00", "10.00"),
                    supply("QC", TaxKind::Qst, "200.00", "19.95"),
                    supply("QC", TaxKind::Gst, "33.33", "1.67"),
                    supply("QC", TaxKind::Qst, "33.33", "3.32"),
                ],
                credits: "0",
                quick_from: Some("QC"),
                expected: ("233.33", "23.27", "17.71", Some(("268.27", "17.71"))),
            },
            Case {
                // Half a cent rounds away from zero: 10% (New Brunswick)
                // of 0.05 + 0.00 HST = 0.005 → 0.01.
                name: "quick method rounds half away from zero",
                kind: RemittanceKind::GstHst,
                gross: "0.05",
                supplies: vec![supply("NB", TaxKind::Hst, "0.05", "0.00")],
                credits: "0",
                quick_from: Some("NB"),
                expected: ("0.05", "0.00", "0.01", Some(("0.05", "0.01"))),
            },
            Case {
                name: "nothing issued",
                kind: RemittanceKind::Qst,
                gross: "0",
                supplies: Vec::new(),
                credits: "0",
                quick_from: Some("QC"),
                expected: ("0", "0", "0", Some(("0", "0"))),
            },
        ];
        for case in cases {
            let quick = case.quick_from.map(|code| QuickMethod {
                rates: &rates,
                establishment: Province::from_code(code).expect("province"),
                credit_room: Decimal::ZERO,
            });
            let figures = compute(
                case.kind,
                amount(case.gross),
                &case.supplies,
                amount(case.credits),
                quick,
            )
            .unwrap_or_else(|error| panic!("{}: {error}", case.name));
            let (taxable, collected, net, expected_quick) = case.expected;
            assert_eq!(figures.gross_revenue, amount(case.gross), "{}", case.name);
            assert_eq!(figures.taxable_revenue, amount(taxable), "{}", case.name);
            assert_eq!(figures.tax_collected, amount(collected), "{}", case.name);
            assert_eq!(figures.net_tax, amount(net), "{}", case.name);
            assert_eq!(
                figures.quick.map(|quick| (quick.base, quick.remittance)),
                expected_quick.map(|(base, remittance)| (amount(base), amount(remittance))),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn the_quick_method_needs_a_published_rate_for_every_supply() {
        let rates = seeded();
        let ontario_from_alberta = compute(
            RemittanceKind::GstHst,
            amount("100"),
            &[supply("ON", TaxKind::Hst, "100.00", "13.00")],
            Decimal::ZERO,
            Some(QuickMethod {
                rates: &rates,
                establishment: Province::from_code("AB").expect("province"),
                credit_room: QUICK_CREDIT_CEILING,
            }),
        );
        assert!(matches!(
            ontario_from_alberta,
            Err(ReturnError::RateMissing { .. })
        ));
        let nova_scotia_at_fourteen = compute(
            RemittanceKind::GstHst,
            amount("100"),
            &[supply("NS", TaxKind::Hst, "100.00", "14.00")],
            Decimal::ZERO,
            Some(QuickMethod {
                rates: &rates,
                establishment: Province::from_code("NS").expect("province"),
                credit_room: QUICK_CREDIT_CEILING,
            }),
        );
        assert!(matches!(
            nova_scotia_at_fourteen,
            Err(ReturnError::RateMissing { .. })
        ));
        let qst_outside_quebec = compute(
            RemittanceKind::Qst,
            amount("100"),
            &[supply("QC", TaxKind::Qst, "100.00", "9.98")],
            Decimal::ZERO,
            Some(QuickMethod {
                rates: &rates,
                establishment: Province::from_code("ON").expect("province"),
                credit_room: QUICK_CREDIT_CEILING,
            }),
        );
        assert!(matches!(
            qst_outside_quebec,
            Err(ReturnError::RateMissing { .. })
        ));
    }

    #[test]
    fn the_quick_methods_one_percent_credit_covers_the_years_first_thirty_thousand_dollars() {
        let rates = seeded();
        let ontario = |base: &str, hst: &str, room: Decimal| {
            compute(
                RemittanceKind::GstHst,
                amount(base),
                &[supply("ON", TaxKind::Hst, base, hst)],
                Decimal::ZERO,
                Some(QuickMethod {
                    rates: &rates,
                    establishment: Province::from_code("ON").expect("province"),
                    credit_room: room,
                }),
            )
            .expect("figures")
        };
        // The first quarter: 1,000.00 + 130.00 HST = 1,130.00, all within
        // the ceiling; 8.8% = 99.44, credit 11.30, owed 88.14.
        let first = ontario("1000.00", "130.00", quick_credit_room(Decimal::ZERO));
        let quick = first.quick.expect("quick");
        assert_eq!(
            (quick.base, quick.remittance, quick.credit),
            (amount("1130.00"), amount("99.44"), amount("11.30"))
        );
        assert_eq!(first.net_tax, amount("88.14"));
        // 29,500.00 of the year's base already used: 500.00 of this
        // period's 1,130.00 earns the credit, 5.00.
        let straddling = ontario("1000.00", "130.00", quick_credit_room(amount("29500.00")));
        assert_eq!(straddling.quick.expect("quick").credit, amount("5.00"));
        assert_eq!(straddling.net_tax, amount("94.44"));
        // The ceiling reached earlier in the year: no credit left.
        let past = ontario("1000.00", "130.00", quick_credit_room(amount("45000.00")));
        assert_eq!(past.quick.expect("quick").credit, Decimal::ZERO);
        assert_eq!(past.net_tax, amount("99.44"));
        // A period of credit notes only earns nothing back.
        let negative = ontario("-100.00", "-13.00", QUICK_CREDIT_CEILING);
        assert_eq!(negative.quick.expect("quick").credit, Decimal::ZERO);
        assert_eq!(quick_credit_room(amount("-5")), QUICK_CREDIT_CEILING);
    }

    #[test]
    fn the_quick_method_stops_above_four_hundred_thousand_dollars() {
        assert!(quick_method_eligible(amount("400000.00")));
        assert!(!quick_method_eligible(amount("400000.01")));
        assert_eq!(QUICK_METHOD_LIMIT.to_string(), "400000");
    }

    #[test]
    fn regions_group_provinces_without_hst() {
        let province = |code| Province::from_code(code).expect("province");
        assert_eq!(RemittanceKind::GstHst.region(province("AB")), Some("NP"));
        assert_eq!(RemittanceKind::GstHst.region(province("QC")), Some("NP"));
        assert_eq!(RemittanceKind::GstHst.region(province("ON")), Some("ON"));
        assert_eq!(RemittanceKind::Qst.region(province("QC")), Some("QC"));
        assert_eq!(RemittanceKind::Qst.region(province("ON")), None);
        for kind in [RemittanceKind::GstHst, RemittanceKind::Qst] {
            assert_eq!(RemittanceKind::parse(kind.as_str()), Some(kind));
        }
    }
}
