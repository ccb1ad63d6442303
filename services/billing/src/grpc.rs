//! `fitflow.billing.v1.BillingService`: authenticate, validate, call the
//! use case, encode.

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use fitflow_api::money::{CURRENCY, cad_amount, two_decimals};
use fitflow_api::text::{TextKind, check_text, required};
use fitflow_api::time::{CivilDate, required_date, to_civil_date, to_timestamp};
use fitflow_auth::Principal;
use fitflow_error::{ApiError, Violations};
use fitflow_proto::billing as pb;
use fitflow_proto::billing::billing_service_server::BillingService;
use fitflow_proto::google::r#type::Date;
use fitflow_proto::types::Money;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::rates::NewRate;
use crate::repo::RateRow;
use crate::tax::{Line, TaxKind, TaxLine, Treatment};
use crate::{ERROR_DOMAIN, TaxTable};

/// Most lines one quote takes.
const MAX_LINES: usize = 500;
/// Longest source of a rate.
const MAX_SOURCE: usize = 500;

/// The gRPC face of [`TaxTable`].
pub struct BillingGrpc {
    table: TaxTable,
}

impl BillingGrpc {
    /// Serves `table` over gRPC.
    pub fn new(table: TaxTable) -> Self {
        Self { table }
    }
}

fn reject(error: ApiError) -> Status {
    error.into_status(ERROR_DOMAIN)
}

fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    fitflow_auth::principal(request).cloned().map_err(reject)
}

fn done(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(reject)
}

fn date_in(violations: &mut Violations, field: &str, value: Option<&Date>) -> Option<NaiveDate> {
    required_date(
        violations,
        field,
        value.map(|date| CivilDate {
            year: date.year,
            month: date.month,
            day: date.day,
        }),
    )
}

fn date_out(value: NaiveDate) -> Date {
    let civil = to_civil_date(value);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

fn money(amount: Decimal) -> Money {
    Money {
        currency_code: CURRENCY.to_owned(),
        amount: two_decimals(amount),
    }
}

/// An amount that may be negative (a credit note's line).
fn signed_amount(violations: &mut Violations, field: &str, value: Option<&Money>) -> Decimal {
    let Some(value) = value else {
        violations.add(field, "is required");
        return Decimal::ZERO;
    };
    let (negative, magnitude) = match value.amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.amount.as_str()),
    };
    match cad_amount(&value.currency_code, magnitude) {
        Ok(amount) if negative => -amount,
        Ok(amount) => amount,
        Err(problem) => {
            violations.add(field, problem);
            Decimal::ZERO
        }
    }
}

fn kind_in(value: i32) -> Option<TaxKind> {
    match pb::TaxKind::try_from(value) {
        Ok(pb::TaxKind::Gst) => Some(TaxKind::Gst),
        Ok(pb::TaxKind::Hst) => Some(TaxKind::Hst),
        Ok(pb::TaxKind::Qst) => Some(TaxKind::Qst),
        Ok(pb::TaxKind::Pst) => Some(TaxKind::Pst),
        Ok(pb::TaxKind::Rst) => Some(TaxKind::Rst),
        Ok(pb::TaxKind::Unspecified) | Err(_) => None,
    }
}

fn kind_out(kind: TaxKind) -> pb::TaxKind {
    match kind {
        TaxKind::Gst => pb::TaxKind::Gst,
        TaxKind::Hst => pb::TaxKind::Hst,
        TaxKind::Qst => pb::TaxKind::Qst,
        TaxKind::Pst => pb::TaxKind::Pst,
        TaxKind::Rst => pb::TaxKind::Rst,
    }
}

fn rate_out(row: RateRow) -> pb::TaxRate {
    pb::TaxRate {
        id: row.id.to_string(),
        province: row
            .province
            .as_deref()
            .and_then(Province::from_code)
            .map_or(0, Province::to_proto),
        kind: TaxKind::parse(&row.kind).map_or(0, |kind| kind_out(kind) as i32),
        percent: row.percent.normalize().to_string(),
        valid_from: Some(date_out(row.valid_from)),
        valid_until: row.valid_until.map(date_out),
        applies_to_services: row.applies_to_services,
        source: row.source,
        created_by: row.created_by.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(to_timestamp(row.created_at)),
    }
}

fn tax_line_out(tax: TaxLine) -> pb::TaxLine {
    pb::TaxLine {
        province: tax.province.to_proto(),
        kind: kind_out(tax.kind) as i32,
        percent: tax.percent.normalize().to_string(),
        base: Some(money(tax.base)),
        amount: Some(money(tax.amount)),
    }
}

/// A rate version as asked.
fn new_rate(violations: &mut Violations, rate: &pb::TaxRate) -> Option<NewRate> {
    let kind = kind_in(rate.kind);
    violations.check(kind.is_some(), "rate.kind", "must be a known tax");
    let province = Province::from_proto(rate.province);
    if rate.province != 0 && province.is_none() {
        violations.add("rate.province", "must be a known province");
    }
    match kind {
        Some(TaxKind::Gst) if rate.province != 0 => {
            violations.add("rate.province", "must be unset for GST, which is federal");
        }
        Some(kind) if kind != TaxKind::Gst && rate.province == 0 => {
            violations.add("rate.province", "is required for a provincial tax or HST");
        }
        _ => {}
    }
    let percent = fitflow_api::money::decimal(&rate.percent)
        .filter(|percent| percent.scale() <= 4 && *percent >= Decimal::ZERO)
        .filter(|percent| *percent <= Decimal::ONE_HUNDRED);
    violations.check(
        percent.is_some(),
        "rate.percent",
        "must be a decimal from 0 to 100 with at most four decimals, e.g. \"9.975\"",
    );
    let valid_from = date_in(violations, "rate.valid_from", rate.valid_from.as_ref());
    if required(violations, "rate.source", &rate.source) {
        check_text(
            violations,
            "rate.source",
            &rate.source,
            TextKind::Line,
            MAX_SOURCE,
        );
    }
    let applies_to_services = rate.applies_to_services || kind.is_some_and(TaxKind::is_federal);
    Some(NewRate {
        province,
        kind: kind?,
        percent: percent?,
        valid_from: valid_from?,
        applies_to_services,
        source: rate.source.clone(),
    })
}

#[tonic::async_trait]
impl BillingService for BillingGrpc {
    async fn list_tax_rates(
        &self,
        request: Request<pb::ListTaxRatesRequest>,
    ) -> Result<Response<pb::ListTaxRatesResponse>, Status> {
        let principal = principal(&request)?;
        let rows = self.table.rates(&principal).await?;
        Ok(Response::new(pb::ListTaxRatesResponse {
            rates: rows.into_iter().map(rate_out).collect(),
        }))
    }

    async fn quote_tax(
        &self,
        request: Request<pb::QuoteTaxRequest>,
    ) -> Result<Response<pb::QuoteTaxResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let date = date_in(&mut violations, "tax_date", request.tax_date.as_ref());
        if request.lines.is_empty() || request.lines.len() > MAX_LINES {
            violations.add("lines", format!("must hold 1 to {MAX_LINES} lines"));
        }
        let mut lines = Vec::with_capacity(request.lines.len().min(MAX_LINES));
        for (index, line) in request.lines.iter().take(MAX_LINES).enumerate() {
            let amount = signed_amount(
                &mut violations,
                &format!("lines[{index}].amount"),
                line.amount.as_ref(),
            );
            let province = Province::from_proto(line.province);
            violations.check(
                province.is_some(),
                &format!("lines[{index}].province"),
                "must be a known province",
            );
            let treatment = match pb::TaxTreatment::try_from(line.treatment) {
                Ok(pb::TaxTreatment::Unspecified | pb::TaxTreatment::Taxable) => {
                    Some(Treatment::Taxable)
                }
                Ok(pb::TaxTreatment::ZeroRated) => Some(Treatment::ZeroRated),
                Ok(pb::TaxTreatment::Exempt) => Some(Treatment::Exempt),
                Err(_) => None,
            };
            violations.check(
                treatment.is_some(),
                &format!("lines[{index}].treatment"),
                "must be a known treatment",
            );
            if let (Some(province), Some(treatment)) = (province, treatment) {
                lines.push(Line {
                    amount,
                    province,
                    treatment,
                });
            }
        }
        done(violations)?;
        let Some(date) = date else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let taxes = self
            .table
            .quote(&principal, date, &lines, request.registered)
            .await?;
        let subtotal: Decimal = lines.iter().map(|line| line.amount).sum();
        let tax_total: Decimal = taxes.iter().map(|tax| tax.amount).sum();
        Ok(Response::new(pb::QuoteTaxResponse {
            taxes: taxes.into_iter().map(tax_line_out).collect(),
            subtotal: Some(money(subtotal)),
            tax_total: Some(money(tax_total)),
            total: Some(money(subtotal + tax_total)),
        }))
    }

    async fn add_tax_rate(
        &self,
        request: Request<pb::AddTaxRateRequest>,
    ) -> Result<Response<pb::AddTaxRateResponse>, Status> {
        let principal = principal(&request)?;
        let rate = request.into_inner().rate.unwrap_or_default();
        let mut violations = Violations::new();
        let new = new_rate(&mut violations, &rate);
        done(violations)?;
        let Some(new) = new else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let (added, ended) = self.table.add(&principal, new).await?;
        Ok(Response::new(pb::AddTaxRateResponse {
            rate: Some(rate_out(added)),
            ended: ended.map(rate_out),
        }))
    }
}
