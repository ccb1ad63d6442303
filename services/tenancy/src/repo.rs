//! Every SQL statement of the tenancy service. Row-level security applies to
//! each (the caller's context is set by `fitflow_db::tx`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::{ContractState, Rates, StudioProfile, TrainerProfile};

/// A `trainers` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TrainerRow {
    pub id: Uuid,
    pub business_name: String,
    pub license_number: String,
    pub specializations: Vec<String>,
    pub bio: String,
    pub hourly_rate: Option<Decimal>,
    pub commission_rate: Option<Decimal>,
    pub time_zone: String,
    pub province: String,
    pub settings: Json<BTreeMap<String, String>>,
    pub supplier_status: Option<String>,
    pub gst_hst_number: Option<String>,
    pub qst_number: Option<String>,
    pub has_bank_account: bool,
    pub leader_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const TRAINER_COLUMNS: &str = "t.id, t.business_name, t.license_number, t.specializations, t.bio, \
     t.hourly_rate, t.commission_rate, t.time_zone, t.province, t.settings, t.supplier_status, \
     t.gst_hst_number, t.qst_number, t.bank_account_sealed IS NOT NULL AS has_bank_account, \
     (SELECT l.leader_id FROM team_links l WHERE l.trainer_id = t.id) AS leader_id, \
     t.version, t.created_at, t.updated_at";

/// Inserts a trainer profile; `false` when one exists for the id already.
pub(crate) async fn insert_trainer(
    conn: &mut PgConnection,
    id: Uuid,
    profile: &TrainerProfile,
    bank_account_sealed: Option<&[u8]>,
) -> Result<bool, sqlx::Error> {
    let tax = profile.tax_profile.as_ref();
    let inserted = sqlx::query(
        "INSERT INTO trainers (id, business_name, license_number, specializations, bio, hourly_rate, \
         commission_rate, time_zone, province, settings, supplier_status, gst_hst_number, qst_number, \
         bank_account_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(&profile.business_name)
    .bind(&profile.license_number)
    .bind(&profile.specializations)
    .bind(&profile.bio)
    .bind(profile.hourly_rate)
    .bind(profile.commission_rate)
    .bind(&profile.time_zone)
    .bind(profile.province.code())
    .bind(Json(&profile.settings))
    .bind(tax.map(|tax| tax.supplier_status.as_str()))
    .bind(tax.and_then(|tax| tax.gst_hst_number.as_deref()))
    .bind(tax.and_then(|tax| tax.qst_number.as_deref()))
    .bind(bank_account_sealed)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A trainer the caller may see; with `lock`, locked for update.
pub(crate) async fn trainer(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<TrainerRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE OF t" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {TRAINER_COLUMNS} FROM trainers t WHERE t.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// What to do with a sealed column on update.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SealedUpdate<'a> {
    /// Leave it.
    Keep,
    /// Replace it (or clear it with `None`).
    Set(Option<&'a [u8]>),
}

/// Writes a whole profile and bumps the version.
pub(crate) async fn update_trainer(
    conn: &mut PgConnection,
    id: Uuid,
    profile: &TrainerProfile,
    bank: SealedUpdate<'_>,
) -> Result<(), sqlx::Error> {
    let tax = profile.tax_profile.as_ref();
    let (replace_bank, bank_value) = match bank {
        SealedUpdate::Keep => (false, None),
        SealedUpdate::Set(value) => (true, value),
    };
    sqlx::query(
        "UPDATE trainers SET business_name = $2, license_number = $3, specializations = $4, bio = $5, \
         hourly_rate = $6, commission_rate = $7, time_zone = $8, province = $9, settings = $10, \
         supplier_status = $11, gst_hst_number = $12, qst_number = $13, \
         bank_account_sealed = CASE WHEN $14 THEN $15 ELSE bank_account_sealed END, \
         version = version + 1, updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&profile.business_name)
    .bind(&profile.license_number)
    .bind(&profile.specializations)
    .bind(&profile.bio)
    .bind(profile.hourly_rate)
    .bind(profile.commission_rate)
    .bind(&profile.time_zone)
    .bind(profile.province.code())
    .bind(Json(&profile.settings))
    .bind(tax.map(|tax| tax.supplier_status.as_str()))
    .bind(tax.and_then(|tax| tax.gst_hst_number.as_deref()))
    .bind(tax.and_then(|tax| tax.qst_number.as_deref()))
    .bind(replace_bank)
    .bind(bank_value)
    .execute(conn)
    .await?;
    Ok(())
}

/// The sealed bank account of a trainer the caller may see: `None` when no
/// such trainer, `Some(None)` when none is on file.
pub(crate) async fn trainer_bank_account(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Option<Vec<u8>>>, sqlx::Error> {
    sqlx::query_scalar("SELECT bank_account_sealed FROM trainers WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The trainers `user_id` acts for (themselves, if a trainer, and everyone
/// below them in their team) and the live studios they manage (owned, and
/// every location below), each list cut at `limit` (plus one, to tell the
/// caller it was cut).
pub(crate) async fn acting_for(
    conn: &mut PgConnection,
    user_id: Uuid,
    limit: i64,
) -> Result<(Vec<Uuid>, Vec<Uuid>), sqlx::Error> {
    let trainers = sqlx::query_scalar(
        "WITH RECURSIVE down (id, depth) AS ( \
             SELECT id, 0 FROM trainers WHERE id = $1 \
             UNION ALL \
             SELECT l.trainer_id, down.depth + 1 FROM team_links l JOIN down ON l.leader_id = down.id \
             WHERE down.depth < 8) \
         SELECT id FROM down ORDER BY depth, id LIMIT $2 + 1",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let studios = sqlx::query_scalar(
        "WITH RECURSIVE down (id, depth) AS ( \
             SELECT id, 0 FROM studios WHERE owner_id = $1 AND deleted_at IS NULL \
             UNION \
             SELECT s.id, down.depth + 1 FROM studios s JOIN down ON s.parent_studio_id = down.id \
             WHERE s.deleted_at IS NULL AND down.depth < 8) \
         SELECT id FROM down GROUP BY id ORDER BY min(depth), id LIMIT $2 + 1",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok((trainers, studios))
}

/// A `studios` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct StudioRow {
    pub id: Uuid,
    pub parent_studio_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub name: String,
    pub business_number: String,
    pub street: String,
    pub city: String,
    pub province: String,
    pub postal_code: String,
    pub phone: String,
    pub email: String,
    pub website: String,
    pub time_zone: String,
    pub payment_frequency: Option<String>,
    pub payment_net_days: Option<i32>,
    pub payment_method: Option<String>,
    pub settings: Json<BTreeMap<String, String>>,
    pub is_headquarters: bool,
    pub billing_consolidated: bool,
    pub status: String,
    pub has_bank_account: bool,
    pub managed: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

const STUDIO_COLUMNS: &str = "s.id, s.parent_studio_id, s.owner_id, s.name, s.business_number, \
     s.street, s.city, s.province, s.postal_code, s.phone, s.email, s.website, s.time_zone, \
     s.payment_frequency, s.payment_net_days, s.payment_method, s.settings, s.is_headquarters, \
     s.billing_consolidated, s.status, s.bank_account_sealed IS NOT NULL AS has_bank_account, \
     caller_manages_studio(s.id) AS managed, s.version, s.created_at, s.updated_at, s.deleted_at";

/// Inserts a studio.
pub(crate) async fn insert_studio(
    conn: &mut PgConnection,
    id: Uuid,
    owner_id: Uuid,
    profile: &StudioProfile,
    bank_account_sealed: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO studios (id, owner_id, parent_studio_id, name, business_number, street, city, \
         province, postal_code, phone, email, website, time_zone, payment_frequency, payment_net_days, \
         payment_method, settings, is_headquarters, billing_consolidated, status, bank_account_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21)",
    )
    .bind(id)
    .bind(owner_id)
    .bind(profile.parent_studio_id)
    .bind(&profile.name)
    .bind(&profile.business_number)
    .bind(&profile.address.street)
    .bind(&profile.address.city)
    .bind(profile.address.province.code())
    .bind(&profile.address.postal_code)
    .bind(&profile.phone)
    .bind(&profile.email)
    .bind(&profile.website)
    .bind(&profile.time_zone)
    .bind(profile.payment_terms.frequency)
    .bind(profile.payment_terms.net_days)
    .bind(profile.payment_terms.method)
    .bind(Json(&profile.settings))
    .bind(profile.is_headquarters)
    .bind(profile.billing_consolidated)
    .bind(profile.status.as_str())
    .bind(bank_account_sealed)
    .execute(conn)
    .await?;
    Ok(())
}

/// A studio (any caller sees the directory); with `lock`, locked for update.
pub(crate) async fn studio(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<StudioRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE OF s" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {STUDIO_COLUMNS} FROM studios s WHERE s.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Writes a whole studio profile and bumps the version.
pub(crate) async fn update_studio(
    conn: &mut PgConnection,
    id: Uuid,
    profile: &StudioProfile,
    bank: SealedUpdate<'_>,
) -> Result<(), sqlx::Error> {
    let (replace_bank, bank_value) = match bank {
        SealedUpdate::Keep => (false, None),
        SealedUpdate::Set(value) => (true, value),
    };
    sqlx::query(
        "UPDATE studios SET parent_studio_id = $2, name = $3, business_number = $4, street = $5, \
         city = $6, province = $7, postal_code = $8, phone = $9, email = $10, website = $11, \
         time_zone = $12, payment_frequency = $13, payment_net_days = $14, payment_method = $15, \
         settings = $16, is_headquarters = $17, billing_consolidated = $18, status = $19, \
         bank_account_sealed = CASE WHEN $20 THEN $21 ELSE bank_account_sealed END, \
         version = version + 1, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(profile.parent_studio_id)
    .bind(&profile.name)
    .bind(&profile.business_number)
    .bind(&profile.address.street)
    .bind(&profile.address.city)
    .bind(profile.address.province.code())
    .bind(&profile.address.postal_code)
    .bind(&profile.phone)
    .bind(&profile.email)
    .bind(&profile.website)
    .bind(&profile.time_zone)
    .bind(profile.payment_terms.frequency)
    .bind(profile.payment_terms.net_days)
    .bind(profile.payment_terms.method)
    .bind(Json(&profile.settings))
    .bind(profile.is_headquarters)
    .bind(profile.billing_consolidated)
    .bind(profile.status.as_str())
    .bind(replace_bank)
    .bind(bank_value)
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets or clears `deleted_at` and bumps the version.
pub(crate) async fn set_studio_deleted(
    conn: &mut PgConnection,
    id: Uuid,
    deleted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE studios SET deleted_at = CASE WHEN $2 THEN now() END, version = version + 1, \
         updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(deleted)
    .execute(conn)
    .await?;
    Ok(())
}

/// The sealed bank account of a studio.
pub(crate) async fn studio_bank_account(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar::<_, Option<Vec<u8>>>(
        "SELECT bank_account_sealed FROM studios WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}

/// One studio of a chain, as the chain rules need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ChainLink {
    pub id: Uuid,
    pub deleted: bool,
    pub is_headquarters: bool,
}

/// `studio` and the studios above it, nearest first (at most 9: deeper is
/// already invalid).
pub(crate) async fn chain_upwards(
    conn: &mut PgConnection,
    studio: Uuid,
) -> Result<Vec<ChainLink>, sqlx::Error> {
    sqlx::query_as(
        "WITH RECURSIVE up (id, parent_studio_id, deleted, is_headquarters, depth) AS ( \
             SELECT id, parent_studio_id, deleted_at IS NOT NULL, is_headquarters, 0 \
             FROM studios WHERE id = $1 \
             UNION ALL \
             SELECT s.id, s.parent_studio_id, s.deleted_at IS NOT NULL, s.is_headquarters, up.depth + 1 \
             FROM studios s JOIN up ON s.id = up.parent_studio_id WHERE up.depth < 8) \
         SELECT id, deleted, is_headquarters FROM up ORDER BY depth",
    )
    .bind(studio)
    .fetch_all(conn)
    .await
}

/// The owners of `studio` and of every studio above it (one per studio,
/// nearest first; repeats when one user owns several).
pub(crate) async fn studio_chain_owners(
    conn: &mut PgConnection,
    studio: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE up (id, parent_studio_id, owner_id, depth) AS ( \
             SELECT id, parent_studio_id, owner_id, 0 FROM studios WHERE id = $1 \
             UNION ALL \
             SELECT s.id, s.parent_studio_id, s.owner_id, up.depth + 1 \
             FROM studios s JOIN up ON s.id = up.parent_studio_id WHERE up.depth < 8) \
         SELECT owner_id FROM up ORDER BY depth",
    )
    .bind(studio)
    .fetch_all(conn)
    .await
}

/// How many levels `studio` and its live locations span (1 when it has none).
pub(crate) async fn subtree_height(
    conn: &mut PgConnection,
    studio: Uuid,
) -> Result<usize, sqlx::Error> {
    let height: i32 = sqlx::query_scalar(
        "WITH RECURSIVE down (id, depth) AS ( \
             SELECT $1::uuid, 1 \
             UNION ALL \
             SELECT s.id, down.depth + 1 FROM studios s JOIN down ON s.parent_studio_id = down.id \
             WHERE s.deleted_at IS NULL AND down.depth < 9) \
         SELECT max(depth) FROM down",
    )
    .bind(studio)
    .fetch_one(conn)
    .await?;
    Ok(usize::try_from(height).unwrap_or(usize::MAX))
}

/// Serializes every change to studio chains for the rest of the
/// transaction, so two concurrent moves cannot build a cycle together.
pub(crate) async fn lock_chains(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenancy.studio_chains'))")
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether `studio` has live locations below it or live contracts.
pub(crate) async fn studio_in_use(
    conn: &mut PgConnection,
    studio: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM studios WHERE parent_studio_id = $1 AND deleted_at IS NULL) \
             OR EXISTS (SELECT 1 FROM contracts WHERE studio_id = $1 \
                        AND (state IN ('invited', 'active') \
                             OR (state = 'ended' AND end_date >= current_date)))",
    )
    .bind(studio)
    .fetch_one(conn)
    .await
}

/// What `ListStudios` filters by.
#[derive(Debug, Clone, Default)]
pub(crate) struct StudioFilter {
    /// A `tsquery` in the `simple` configuration, already built from words.
    pub tsquery: Option<String>,
    /// Two-letter province code.
    pub province: Option<&'static str>,
    /// Only direct locations of this studio.
    pub parent_studio_id: Option<Uuid>,
    /// Only studios the caller manages.
    pub managed_only: bool,
    /// Include soft-deleted studios (managed ones only).
    pub show_deleted: bool,
}

/// A page of studios, newest first, after `after` (created_at, id).
pub(crate) async fn list_studios(
    conn: &mut PgConnection,
    filter: &StudioFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<StudioRow>, sqlx::Error> {
    let mut query =
        sqlx::QueryBuilder::new(format!("SELECT {STUDIO_COLUMNS} FROM studios s WHERE true"));
    if let Some(tsquery) = &filter.tsquery {
        query
            .push(" AND s.search @@ to_tsquery('simple'::regconfig, search_fold(")
            .push_bind(tsquery.clone())
            .push("))");
    }
    if let Some(province) = filter.province {
        query.push(" AND s.province = ").push_bind(province);
    }
    if let Some(parent) = filter.parent_studio_id {
        query.push(" AND s.parent_studio_id = ").push_bind(parent);
    }
    if filter.managed_only {
        query.push(" AND caller_manages_studio(s.id)");
    }
    if filter.show_deleted {
        query.push(" AND (s.deleted_at IS NULL OR caller_manages_studio(s.id))");
    } else {
        query.push(" AND s.deleted_at IS NULL");
    }
    if let Some((at, id)) = after {
        query
            .push(" AND (s.created_at, s.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
        .push_bind(limit);
    // A search is planned with its own words every time (an unnamed
    // statement): a prepared one turns generic after five runs, and the
    // generic plan walks the newest-first index for every search, through
    // all 100,000 studios for a word that matches none (133 ms measured).
    query
        .build_query_as()
        .persistent(filter.tsquery.is_none())
        .fetch_all(conn)
        .await
}

/// A `contracts` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ContractRow {
    pub id: Uuid,
    pub trainer_id: Uuid,
    pub studio_id: Uuid,
    pub role: String,
    pub state: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub time_zone: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CONTRACT_COLUMNS: &str = "c.id, c.trainer_id, c.studio_id, c.role, c.state, c.start_date, \
     c.end_date, (SELECT s.time_zone FROM studios s WHERE s.id = c.studio_id) AS time_zone, \
     c.version, c.created_at, c.updated_at";

/// Inserts an invitation; `false` when the pair has a live contract already.
pub(crate) async fn insert_contract(
    conn: &mut PgConnection,
    id: Uuid,
    trainer_id: Uuid,
    studio_id: Uuid,
    role: &str,
    start_date: NaiveDate,
    invited_by: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO contracts (id, trainer_id, studio_id, role, state, start_date, invited_by) \
         VALUES ($1, $2, $3, $4, 'invited', $5, $6) \
         ON CONFLICT (trainer_id, studio_id) WHERE state IN ('invited', 'active') DO NOTHING",
    )
    .bind(id)
    .bind(trainer_id)
    .bind(studio_id)
    .bind(role)
    .bind(start_date)
    .bind(invited_by)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Whether an ended contract of the pair still covers `from` or later.
pub(crate) async fn ended_contract_reaches(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    studio_id: Uuid,
    from: NaiveDate,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM contracts WHERE trainer_id = $1 AND studio_id = $2 \
         AND state = 'ended' AND end_date >= $3)",
    )
    .bind(trainer_id)
    .bind(studio_id)
    .bind(from)
    .fetch_one(conn)
    .await
}

/// A contract the caller is a party to; with `lock`, locked for update.
pub(crate) async fn contract(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<ContractRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE OF c" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {CONTRACT_COLUMNS} FROM contracts c WHERE c.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Moves a contract to `state` (with its end date) and bumps the version.
pub(crate) async fn set_contract_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: ContractState,
    end_date: Option<NaiveDate>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE contracts SET state = $2, end_date = $3, version = version + 1, updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(end_date)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whose contracts a list shows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Party {
    /// A trainer's.
    Trainer(Uuid),
    /// A studio's.
    Studio(Uuid),
}

/// A page of contracts, newest first, after `after` (created_at, id).
pub(crate) async fn list_contracts(
    conn: &mut PgConnection,
    party: Party,
    state: Option<ContractState>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ContractRow>, sqlx::Error> {
    let mut query =
        sqlx::QueryBuilder::new(format!("SELECT {CONTRACT_COLUMNS} FROM contracts c WHERE "));
    match party {
        Party::Trainer(id) => query.push("c.trainer_id = ").push_bind(id),
        Party::Studio(id) => query.push("c.studio_id = ").push_bind(id),
    };
    if let Some(state) = state {
        query.push(" AND c.state = ").push_bind(state.as_str());
    }
    if let Some((at, id)) = after {
        query
            .push(" AND (c.created_at, c.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY c.created_at DESC, c.id DESC LIMIT ")
        .push_bind(limit);
    query.build_query_as().fetch_all(conn).await
}

/// A `rate_versions` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RateRow {
    pub contract_id: Uuid,
    pub effective_date: NaiveDate,
    pub group_rate: Decimal,
    pub individual_rate: Decimal,
    pub trial_rate: Decimal,
    pub commission_rate: Decimal,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl RateRow {
    /// The rates it holds.
    pub(crate) fn rates(&self) -> Rates {
        Rates {
            group: self.group_rate,
            individual: self.individual_rate,
            trial: self.trial_rate,
            commission: self.commission_rate,
        }
    }
}

const RATE_COLUMNS: &str = "r.contract_id, r.effective_date, r.group_rate, r.individual_rate, \
     r.trial_rate, r.commission_rate, r.created_by, r.created_at";

/// Adds a version; `false` when one takes effect on that date already.
pub(crate) async fn insert_rate_version(
    conn: &mut PgConnection,
    contract_id: Uuid,
    effective_date: NaiveDate,
    rates: &Rates,
    created_by: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO rate_versions (contract_id, effective_date, group_rate, individual_rate, \
         trial_rate, commission_rate, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (contract_id, effective_date) DO NOTHING",
    )
    .bind(contract_id)
    .bind(effective_date)
    .bind(rates.group)
    .bind(rates.individual)
    .bind(rates.trial)
    .bind(rates.commission)
    .bind(created_by)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The version of `contract_id` in force on `date`, else its first one.
pub(crate) async fn rates_as_of(
    conn: &mut PgConnection,
    contract_id: Uuid,
    date: NaiveDate,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM rate_versions r WHERE r.contract_id = $1 \
         ORDER BY (r.effective_date <= $2) DESC, \
                  CASE WHEN r.effective_date <= $2 THEN r.effective_date END DESC, \
                  r.effective_date ASC \
         LIMIT 1"
    ))
    .bind(contract_id)
    .bind(date)
    .fetch_optional(conn)
    .await
}

/// Every version of a contract, newest effective date first (at most 1000).
pub(crate) async fn rate_versions(
    conn: &mut PgConnection,
    contract_id: Uuid,
) -> Result<Vec<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM rate_versions r WHERE r.contract_id = $1 \
         ORDER BY r.effective_date DESC LIMIT 1000"
    ))
    .bind(contract_id)
    .fetch_all(conn)
    .await
}

/// The rate version in force on `date` of the accepted contract between the
/// pair that covers it.
pub(crate) async fn rate_on(
    conn: &mut PgConnection,
    trainer_id: Uuid,
    studio_id: Uuid,
    date: NaiveDate,
) -> Result<Option<RateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {RATE_COLUMNS} FROM contracts c \
         JOIN LATERAL (SELECT * FROM rate_versions v WHERE v.contract_id = c.id \
                       AND v.effective_date <= $3 ORDER BY v.effective_date DESC LIMIT 1) r ON true \
         WHERE c.trainer_id = $1 AND c.studio_id = $2 AND c.state IN ('active', 'ended') \
           AND c.start_date <= $3 AND (c.end_date IS NULL OR c.end_date >= $3) \
         ORDER BY c.start_date DESC LIMIT 1"
    ))
    .bind(trainer_id)
    .bind(studio_id)
    .bind(date)
    .fetch_optional(conn)
    .await
}

/// The handler's own check (row-level security repeats it): whether the
/// caller is `trainer` or leads a team above them.
pub(crate) async fn caller_acts_for(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT caller_acts_for($1)")
        .bind(trainer)
        .fetch_one(conn)
        .await
}

/// The handler's own check (row-level security repeats it): whether the
/// caller owns `studio` or a studio above it.
pub(crate) async fn caller_manages_studio(
    conn: &mut PgConnection,
    studio: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT caller_manages_studio($1)")
        .bind(studio)
        .fetch_one(conn)
        .await
}

/// Whether the caller manages a studio that has a contract (in any state)
/// with `trainer`.
pub(crate) async fn caller_contracts_with(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM contracts c \
         WHERE c.trainer_id = $1 AND caller_manages_studio(c.studio_id))",
    )
    .bind(trainer)
    .fetch_one(conn)
    .await
}

/// Whether `error` is PostgreSQL's foreign-key violation (SQLSTATE 23503).
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database) if database.code().as_deref() == Some("23503"))
}

/// A `team_invitations` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct TeamInvitationRow {
    pub id: Uuid,
    pub leader_id: Uuid,
    pub trainer_id: Uuid,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const INVITATION_COLUMNS: &str = "id, leader_id, trainer_id, state, created_at, expires_at";

/// Serializes every change to teams for the rest of the transaction, so two
/// concurrent joins cannot build a cycle together.
pub(crate) async fn lock_teams(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tenancy.teams'))")
        .execute(conn)
        .await?;
    Ok(())
}

/// `trainer` and the leads above them, nearest first (at most 9).
pub(crate) async fn team_chain_upwards(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE up (id, depth) AS ( \
             SELECT $1::uuid, 0 \
             UNION ALL \
             SELECT l.leader_id, up.depth + 1 FROM team_links l JOIN up ON l.trainer_id = up.id \
             WHERE up.depth < 8) \
         SELECT id FROM up ORDER BY depth",
    )
    .bind(trainer)
    .fetch_all(conn)
    .await
}

/// How many levels `trainer` and the trainers below them span (1 alone).
pub(crate) async fn team_subtree_height(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<usize, sqlx::Error> {
    let height: i32 = sqlx::query_scalar(
        "WITH RECURSIVE down (id, depth) AS ( \
             SELECT $1::uuid, 1 \
             UNION ALL \
             SELECT l.trainer_id, down.depth + 1 FROM team_links l JOIN down ON l.leader_id = down.id \
             WHERE down.depth < 9) \
         SELECT max(depth) FROM down",
    )
    .bind(trainer)
    .fetch_one(conn)
    .await?;
    Ok(usize::try_from(height).unwrap_or(usize::MAX))
}

/// The lead of `trainer`'s team, if they are in one.
pub(crate) async fn team_leader_of(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT leader_id FROM team_links WHERE trainer_id = $1")
        .bind(trainer)
        .fetch_optional(conn)
        .await
}

/// Marks the lapsed pending invitation of the pair expired, so a new one
/// can be sent.
pub(crate) async fn expire_team_invitations(
    conn: &mut PgConnection,
    leader: Uuid,
    trainer: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE team_invitations SET state = 'expired' \
         WHERE leader_id = $1 AND trainer_id = $2 AND state = 'pending' AND expires_at <= now()",
    )
    .bind(leader)
    .bind(trainer)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts an invitation; `false` when one is pending for the pair.
pub(crate) async fn insert_team_invitation(
    conn: &mut PgConnection,
    id: Uuid,
    leader: Uuid,
    trainer: Uuid,
    invited_by: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO team_invitations (id, leader_id, trainer_id, invited_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (leader_id, trainer_id) WHERE state = 'pending' DO NOTHING",
    )
    .bind(id)
    .bind(leader)
    .bind(trainer)
    .bind(invited_by)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// An invitation the caller is a party to; with `lock`, locked for update.
pub(crate) async fn team_invitation(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<TeamInvitationRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} FROM team_invitations WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The pending, unexpired invitations `trainer` received or sent.
pub(crate) async fn pending_team_invitations(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<Vec<TeamInvitationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INVITATION_COLUMNS} FROM team_invitations \
         WHERE (trainer_id = $1 OR leader_id = $1) AND state = 'pending' AND expires_at > now() \
         ORDER BY created_at DESC LIMIT 200"
    ))
    .bind(trainer)
    .fetch_all(conn)
    .await
}

/// Records the answer to an invitation.
pub(crate) async fn answer_team_invitation(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE team_invitations SET state = $2, answered_at = now() WHERE id = $1")
        .bind(id)
        .bind(state)
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts `trainer` in `leader`'s team.
pub(crate) async fn insert_team_link(
    conn: &mut PgConnection,
    trainer: Uuid,
    leader: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO team_links (trainer_id, leader_id) VALUES ($1, $2)")
        .bind(trainer)
        .bind(leader)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes `trainer` out of their team.
pub(crate) async fn delete_team_link(
    conn: &mut PgConnection,
    trainer: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM team_links WHERE trainer_id = $1")
        .bind(trainer)
        .execute(conn)
        .await?;
    Ok(())
}

/// The trainers below `leader`, nearest levels first, at most `limit`.
pub(crate) async fn team_members(
    conn: &mut PgConnection,
    leader: Uuid,
    limit: i64,
) -> Result<Vec<TrainerRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH RECURSIVE down (id, depth) AS ( \
             SELECT l.trainer_id, 1 FROM team_links l WHERE l.leader_id = $1 \
             UNION ALL \
             SELECT l.trainer_id, down.depth + 1 FROM team_links l JOIN down ON l.leader_id = down.id \
             WHERE down.depth < 8) \
         SELECT {TRAINER_COLUMNS} FROM down JOIN trainers t ON t.id = down.id \
         ORDER BY down.depth, t.id LIMIT $2"
    ))
    .bind(leader)
    .bind(limit)
    .fetch_all(conn)
    .await
}
