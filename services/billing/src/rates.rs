//! The tax table's use cases: read it, quote tax with it, and (operators
//! only) add a version of a rate, audited in the same transaction.

use chrono::{Duration, NaiveDate, Utc};
use fitflow_api::canada::Province;
use fitflow_auth::{Caller, Principal, Role};
use fitflow_outbox::{Action, AuditEventBuilder};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::repo::{self, RateRow};
use crate::tax::{self, Line, TaxKind, TaxLine, TaxRate};
use crate::{BillingError, SERVICE};

/// A rate version to add.
#[derive(Debug, Clone)]
pub(crate) struct NewRate {
    pub province: Option<Province>,
    pub kind: TaxKind,
    pub percent: Decimal,
    pub valid_from: NaiveDate,
    pub applies_to_services: bool,
    pub source: String,
}

/// The service's state: its pool.
pub struct TaxTable {
    pool: PgPool,
}

pub(crate) fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

pub(crate) async fn commit(tx: fitflow_db::Tx) -> Result<(), BillingError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

/// A stored row as the engine's rate.
pub(crate) fn engine_rate(row: &RateRow) -> Result<TaxRate, BillingError> {
    let province = match &row.province {
        Some(code) => Some(Province::from_code(code).ok_or(BillingError::Corrupt("province"))?),
        None => None,
    };
    Ok(TaxRate {
        province,
        kind: TaxKind::parse(&row.kind).ok_or(BillingError::Corrupt("tax kind"))?,
        percent: row.percent,
        from: row.valid_from,
        until: row.valid_until,
        applies_to_services: row.applies_to_services,
    })
}

impl TaxTable {
    /// The use cases over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for the quick-method rates' use cases.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Every version of every rate.
    pub(crate) async fn rates(&self, principal: &Principal) -> Result<Vec<RateRow>, BillingError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let rows = repo::rates(&mut tx).await?;
        commit(tx).await?;
        Ok(rows)
    }

    /// The taxes of `lines` on an invoice dated `date`.
    pub(crate) async fn quote(
        &self,
        principal: &Principal,
        date: NaiveDate,
        lines: &[Line],
        registered: bool,
    ) -> Result<Vec<TaxLine>, BillingError> {
        let rows = self.rates(principal).await?;
        let table = rows
            .iter()
            .map(engine_rate)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(tax::compute(&table, date, lines, registered)?)
    }

    /// Adds a version of a rate from `valid_from` (today or later, after
    /// the open version's start), ending the open one the day before.
    pub(crate) async fn add(
        &self,
        principal: &Principal,
        new: NewRate,
    ) -> Result<(RateRow, Option<RateRow>), BillingError> {
        principal.require_role(Role::Operator)?;
        if new.valid_from < Utc::now().date_naive() {
            return Err(BillingError::TaxRateNotLater);
        }
        let province = new.province.map(Province::code);
        let kind = new.kind.as_str();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        repo::lock_scope(&mut tx, province, kind).await?;
        let open = repo::open_rate(&mut tx, province, kind).await?;
        let mut ended = None;
        if let Some(open) = open {
            if new.valid_from <= open.valid_from {
                return Err(BillingError::TaxRateNotLater);
            }
            repo::end_rate(&mut tx, open.id, new.valid_from - Duration::days(1)).await?;
            ended = Some(open.id);
        }
        let row = RateRow {
            id: Uuid::now_v7(),
            province: province.map(str::to_owned),
            kind: kind.to_owned(),
            percent: new.percent,
            valid_from: new.valid_from,
            valid_until: None,
            applies_to_services: new.applies_to_services,
            source: new.source,
            created_by: Some(principal.user_id),
            created_at: Utc::now(),
        };
        repo::insert_rate(&mut tx, &row).await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Create, "tax_rates", row.id)
            .actor_user(principal.user_id)
            .change("province", "", province.unwrap_or("CA"))
            .change("kind", "", kind)
            .change("percent", "", &row.percent.to_string())
            .change("valid_from", "", &row.valid_from.to_string())
            .change(
                "applies_to_services",
                "",
                &row.applies_to_services.to_string(),
            );
        if let Some(ended) = ended {
            event = event.change("ends", "", &ended.to_string());
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let stored = repo::rate(&mut tx, row.id)
            .await?
            .ok_or(BillingError::Corrupt("rate just added"))?;
        let ended = match ended {
            Some(id) => repo::rate(&mut tx, id).await?,
            None => None,
        };
        commit(tx).await?;
        Ok((stored, ended))
    }
}
