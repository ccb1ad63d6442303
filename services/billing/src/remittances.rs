//! Sales-tax remittances: calculated from the trainer's issued invoices and
//! credit notes of a period (the figures come from [`crate::tax_return`]),
//! recalculated until filed, then filed and paid. Only the trainer
//! themselves (not a supervisor): filing is the registrant's own act. Each
//! use case writes its audit or access event in its own transaction.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, Utc};
use fitflow_api::canada::Province;
use fitflow_api::etag::Etag;
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal};
use fitflow_error::Violations;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::repo::{self, RemittanceRow};
use crate::tax::TaxKind;
use crate::tax_return::{self, QuickMethod, QuickRate, RemittanceKind, TaxedSupply};
use crate::{BillingError, SERVICE};

const TABLE: &str = "tax_remittances";

/// A calculation as asked.
#[derive(Debug, Clone)]
pub(crate) struct Calculation {
    pub trainer_id: Option<Uuid>,
    pub kind: RemittanceKind,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub input_tax_credits: Decimal,
    /// The establishment's province, when the quick method is elected.
    pub quick_method: Option<Province>,
}

/// A remittance as returned.
#[derive(Debug, Clone)]
pub(crate) struct RemittanceView {
    pub row: RemittanceRow,
    pub etag: Etag,
}

fn view(row: RemittanceRow) -> RemittanceView {
    let etag = Etag::of_version(row.id, row.version);
    RemittanceView { row, etag }
}

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), BillingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

fn quick_rate(row: &repo::QuickRateRow) -> Result<QuickRate, BillingError> {
    Ok(QuickRate {
        kind: RemittanceKind::parse(&row.kind).ok_or(BillingError::Corrupt("quick rate kind"))?,
        establishment_region: row.establishment_region.clone(),
        supply_region: row.supply_region.clone(),
        percent: row.percent,
        from: row.valid_from,
        until: row.valid_until,
    })
}

/// REMITTANCE_TOO_LARGE unless every figure fits NUMERIC(12,2): each
/// invoice of the period fits, but their sums (and the net tax less credits
/// of up to 9999999999.99) may not.
fn fits(figures: &tax_return::Figures) -> Result<(), BillingError> {
    let quick = figures
        .quick
        .iter()
        .flat_map(|quick| [quick.base, quick.remittance, quick.credit]);
    let mut amounts = [
        figures.gross_revenue,
        figures.taxable_revenue,
        figures.tax_collected,
        figures.input_tax_credits,
        figures.net_tax,
    ]
    .into_iter()
    .chain(quick);
    if amounts.any(|amount| amount.abs() > crate::grpc::MAX_AMOUNT) {
        return Err(BillingError::RemittanceTooLarge);
    }
    Ok(())
}

/// The service's remittances.
pub struct Remittances {
    pool: PgPool,
    page_tokens: PageTokens,
}

impl Remittances {
    /// The use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            page_tokens: PageTokens::with_random_key(),
        }
    }

    /// The page-token issuer, for ListTaxRemittances.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }

    /// The remittance locked for a change, if the caller owns it.
    async fn locked(
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        id: Uuid,
        etag: &str,
    ) -> Result<RemittanceRow, BillingError> {
        let row = repo::remittance(tx, id, true)
            .await?
            .filter(|row| row.trainer_id == principal.user_id)
            .ok_or(BillingError::RemittanceNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        Ok(row)
    }

    /// Calculates (or recalculates, while calculated) the remittance of a
    /// period.
    pub(crate) async fn calculate(
        &self,
        principal: &Principal,
        asked: Calculation,
    ) -> Result<RemittanceView, BillingError> {
        let trainer_id = asked.trainer_id.unwrap_or(principal.user_id);
        if trainer_id != principal.user_id {
            return Err(BillingError::TrainerNotFound);
        }
        let kind = asked.kind.as_str();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::lock_remittances(&mut tx, trainer_id, kind).await?;
        let overlapping = repo::overlapping_remittances(
            &mut tx,
            trainer_id,
            kind,
            asked.period_start,
            asked.period_end,
        )
        .await?;
        let existing = match overlapping.as_slice() {
            [] => None,
            [same]
                if same.period_start == asked.period_start
                    && same.period_end == asked.period_end =>
            {
                if same.status != "calculated" {
                    return Err(BillingError::RemittanceState);
                }
                Some(same.clone())
            }
            _ => return Err(BillingError::RemittancePeriodOverlaps),
        };

        let gross =
            repo::period_revenue(&mut tx, trainer_id, asked.period_start, asked.period_end).await?;
        let mut supplies = Vec::new();
        for (date, province, tax, base, amount) in
            repo::period_taxes(&mut tx, trainer_id, asked.period_start, asked.period_end).await?
        {
            supplies.push(TaxedSupply {
                date,
                province: Province::from_code(&province)
                    .ok_or(BillingError::Corrupt("tax province"))?,
                kind: TaxKind::parse(&tax).ok_or(BillingError::Corrupt("tax kind"))?,
                base,
                amount,
            });
        }
        let rates = match asked.quick_method {
            Some(_) => {
                // The four quarters ending with the period.
                let year_start = asked.period_end - Duration::days(364);
                let annual =
                    repo::taxable_supplies(&mut tx, trainer_id, year_start, asked.period_end)
                        .await?;
                if !tax_return::quick_method_eligible(annual) {
                    return Err(BillingError::QuickMethodNotEligible);
                }
                repo::quick_rates(&mut tx)
                    .await?
                    .iter()
                    .map(quick_rate)
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        // The fiscal year is taken as the calendar year of the period's end
        // (an individual's business year, as most trainers'); the credit
        // ceiling is what the year's earlier periods left.
        let credit_room = match asked.quick_method {
            Some(_) => {
                let year_start = NaiveDate::from_ymd_opt(asked.period_end.year(), 1, 1)
                    .ok_or(BillingError::Corrupt("period year"))?;
                tax_return::quick_credit_room(
                    repo::earlier_quick_bases(
                        &mut tx,
                        trainer_id,
                        kind,
                        year_start,
                        asked.period_start,
                    )
                    .await?,
                )
            }
            None => Decimal::ZERO,
        };
        let quick = asked.quick_method.map(|establishment| QuickMethod {
            rates: &rates,
            establishment,
            credit_room,
        });
        let figures =
            tax_return::compute(asked.kind, gross, &supplies, asked.input_tax_credits, quick)?;
        fits(&figures)?;
        let id = existing.as_ref().map_or_else(Uuid::now_v7, |row| row.id);
        let now = Utc::now();
        let row = RemittanceRow {
            id,
            trainer_id,
            kind: kind.to_owned(),
            period_start: asked.period_start,
            period_end: asked.period_end,
            status: "calculated".to_owned(),
            gross_revenue: figures.gross_revenue,
            taxable_revenue: figures.taxable_revenue,
            tax_collected: figures.tax_collected,
            input_tax_credits: figures.input_tax_credits,
            net_tax: figures.net_tax,
            quick_method: figures.quick.is_some(),
            quick_method_base: figures.quick.as_ref().map(|quick| quick.base),
            quick_method_remittance: figures.quick.as_ref().map(|quick| quick.remittance),
            quick_method_credit: figures.quick.as_ref().map(|quick| quick.credit),
            establishment_province: asked
                .quick_method
                .map(|province| province.code().to_owned()),
            filed_on: None,
            filing_reference: String::new(),
            paid_on: None,
            payment_reference: String::new(),
            version: 1,
            created_at: now,
            calculated_at: now,
        };
        repo::upsert_remittance(&mut tx, &row).await?;
        let action = if existing.is_some() {
            Action::Update
        } else {
            Action::Create
        };
        let before =
            |value: fn(&RemittanceRow) -> String| existing.as_ref().map(value).unwrap_or_default();
        let event = AuditEventBuilder::new(SERVICE, action, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("kind", &before(|row| row.kind.clone()), kind)
            .change(
                "period",
                &before(|row| format!("{}..={}", row.period_start, row.period_end)),
                &format!("{}..={}", row.period_start, row.period_end),
            )
            .change(
                "tax_collected",
                &before(|row| row.tax_collected.to_string()),
                &row.tax_collected.to_string(),
            )
            .change(
                "input_tax_credits",
                &before(|row| row.input_tax_credits.to_string()),
                &row.input_tax_credits.to_string(),
            )
            .change(
                "net_tax",
                &before(|row| row.net_tax.to_string()),
                &row.net_tax.to_string(),
            )
            .change(
                "quick_method",
                &before(|row| row.quick_method.to_string()),
                &row.quick_method.to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let stored = repo::remittance(&mut tx, id, false)
            .await?
            .ok_or(BillingError::Corrupt("remittance just stored"))?;
        commit(tx).await?;
        Ok(view(stored))
    }

    /// Reads a remittance, with an access event.
    pub(crate) async fn get(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<RemittanceView, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::remittance(&mut tx, id, false)
            .await?
            .filter(|row| row.trainer_id == principal.user_id)
            .ok_or(BillingError::RemittanceNotFound)?;
        let access = AuditEventBuilder::new(SERVICE, Action::Read, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .purpose(Purpose::Payment)
            .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok(view(row))
    }

    /// One page of the trainer's remittances, with one access event.
    pub(crate) async fn list(
        &self,
        principal: &Principal,
        trainer_id: Option<Uuid>,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<RemittanceView>, Option<(DateTime<Utc>, Uuid)>), BillingError> {
        let trainer_id = trainer_id.unwrap_or(principal.user_id);
        if trainer_id != principal.user_id {
            return Err(BillingError::TrainerNotFound);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut rows =
            repo::remittances_of(&mut tx, trainer_id, after, i64::from(page_size) + 1).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        let access =
            AuditEventBuilder::new(SERVICE, Action::Read, "tax_remittance_list", trainer_id)
                .actor_user(principal.user_id)
                .tenant(trainer_id)
                .change("tax_remittances", "", &rows.len().to_string())
                .purpose(Purpose::Payment)
                .build();
        fitflow_outbox::record(&mut tx, &access).await?;
        commit(tx).await?;
        Ok((rows.into_iter().map(view).collect(), next))
    }

    /// Records the filing of a calculated remittance.
    pub(crate) async fn file(
        &self,
        principal: &Principal,
        id: Uuid,
        filed_on: NaiveDate,
        reference: &str,
        etag: &str,
    ) -> Result<RemittanceView, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        if row.status != "calculated" {
            return Err(BillingError::RemittanceState);
        }
        let mut violations = Violations::new();
        violations.check(
            filed_on >= row.period_start,
            "filed_on",
            "must not be before the period starts",
        );
        violations.into_result()?;
        repo::file_remittance(&mut tx, id, filed_on, reference).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change("status", "calculated", "filed")
            .change("filed_on", "", &filed_on.to_string())
            .change(
                "filing_reference_length",
                "",
                &reference.chars().count().to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let stored = repo::remittance(&mut tx, id, false)
            .await?
            .ok_or(BillingError::RemittanceNotFound)?;
        commit(tx).await?;
        Ok(view(stored))
    }

    /// Records the payment of a filed remittance.
    pub(crate) async fn pay(
        &self,
        principal: &Principal,
        id: Uuid,
        paid_on: NaiveDate,
        reference: &str,
        etag: &str,
    ) -> Result<RemittanceView, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = Self::locked(&mut tx, principal, id, etag).await?;
        let filed_on = match (row.status.as_str(), row.filed_on) {
            ("filed", Some(filed_on)) => filed_on,
            _ => return Err(BillingError::RemittanceState),
        };
        let mut violations = Violations::new();
        violations.check(
            paid_on >= filed_on,
            "paid_on",
            "must not be before the filing date",
        );
        violations.into_result()?;
        repo::pay_remittance(&mut tx, id, paid_on, reference).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, id)
            .actor_user(principal.user_id)
            .tenant(row.trainer_id)
            .change("status", "filed", "paid")
            .change("paid_on", "", &paid_on.to_string())
            .change(
                "payment_reference_length",
                "",
                &reference.chars().count().to_string(),
            )
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let stored = repo::remittance(&mut tx, id, false)
            .await?
            .ok_or(BillingError::RemittanceNotFound)?;
        commit(tx).await?;
        Ok(view(stored))
    }
}
