//! Studios and chains: the directory every user may search, and what only a
//! studio's managers (its owner, or the owner of a studio above it) see and
//! change.

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_api::soft_delete::{self, DeleteStep};
use fitflow_auth::Principal;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Directory, Idempotency, user};
use crate::domain::{self, Address, BankAccount, PaymentTerms, StudioProfile, StudioStatus};
use crate::formats::Province;
use crate::repo::{self, SealedUpdate, StudioFilter, StudioRow};
use crate::{SERVICE, TenancyError};

const TABLE: &str = "studios";
const RESOURCE: &str = "studio";

/// A studio as returned.
#[derive(Debug, Clone)]
pub(crate) struct StudioView {
    /// The stored row (`managed` says whether the caller manages it).
    pub row: StudioRow,
    /// Its profile.
    pub profile: StudioProfile,
    /// Where its invoices go (managers only).
    pub billing_studio_id: Option<Uuid>,
    /// Its etag.
    pub etag: Etag,
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct StudioPatch {
    /// New parent (or none: the top of its own chain).
    pub parent_studio_id: Option<Option<Uuid>>,
    /// New name.
    pub name: Option<String>,
    /// New business number.
    pub business_number: Option<String>,
    /// New address.
    pub address: Option<Address>,
    /// New phone, email and website.
    pub contact: Option<(String, String, String)>,
    /// New zone.
    pub time_zone: Option<String>,
    /// New payment terms.
    pub payment_terms: Option<PaymentTerms>,
    /// New settings.
    pub settings: Option<std::collections::BTreeMap<String, String>>,
    /// New headquarters flag.
    pub is_headquarters: Option<bool>,
    /// New consolidation flag.
    pub billing_consolidated: Option<bool>,
    /// New state.
    pub status: Option<StudioStatus>,
    /// New bank account (or cleared).
    pub bank_account: Option<Option<BankAccount>>,
}

impl StudioPatch {
    /// Applies the patch; returns the names of the changed fields.
    fn apply(&self, profile: &mut StudioProfile) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! set {
            ($field:ident) => {
                if let Some(value) = &self.$field {
                    if profile.$field != *value {
                        profile.$field = value.clone();
                        changed.push(stringify!($field));
                    }
                }
            };
        }
        set!(parent_studio_id);
        set!(name);
        set!(business_number);
        set!(address);
        set!(time_zone);
        set!(payment_terms);
        set!(settings);
        set!(is_headquarters);
        set!(billing_consolidated);
        set!(status);
        if let Some((phone, email, website)) = &self.contact
            && (profile.phone != *phone || profile.email != *email || profile.website != *website)
        {
            profile.phone = phone.clone();
            profile.email = email.clone();
            profile.website = website.clone();
            changed.push("contact");
        }
        if self.bank_account.is_some() {
            changed.push("bank_account");
        }
        changed
    }
}

fn stored_name(
    names: &[&'static str],
    value: Option<&str>,
) -> Result<Option<&'static str>, TenancyError> {
    match value {
        None => Ok(None),
        Some(value) => names
            .iter()
            .copied()
            .find(|name| *name == value)
            .map(Some)
            .ok_or(TenancyError::Corrupt("payment terms")),
    }
}

/// Stored payment frequencies.
pub(crate) const FREQUENCIES: [&str; 3] = ["weekly", "biweekly", "monthly"];
/// Stored payment methods.
pub(crate) const METHODS: [&str; 3] = ["direct_deposit", "e_transfer", "cheque"];

fn profile_of(row: &StudioRow) -> Result<StudioProfile, TenancyError> {
    Ok(StudioProfile {
        parent_studio_id: row.parent_studio_id,
        name: row.name.clone(),
        business_number: row.business_number.clone(),
        address: Address {
            street: row.street.clone(),
            city: row.city.clone(),
            province: Province::from_code(&row.province)
                .ok_or(TenancyError::Corrupt("province"))?,
            postal_code: row.postal_code.clone(),
        },
        phone: row.phone.clone(),
        email: row.email.clone(),
        website: row.website.clone(),
        time_zone: row.time_zone.clone(),
        payment_terms: PaymentTerms {
            frequency: stored_name(&FREQUENCIES, row.payment_frequency.as_deref())?,
            net_days: row.payment_net_days,
            method: stored_name(&METHODS, row.payment_method.as_deref())?,
        },
        settings: row.settings.0.clone(),
        is_headquarters: row.is_headquarters,
        billing_consolidated: row.billing_consolidated,
        status: StudioStatus::parse(&row.status).ok_or(TenancyError::Corrupt("status"))?,
    })
}

/// Where a consolidated location's invoices go: the nearest studio above it
/// marked headquarters (else itself).
async fn billing_studio(conn: &mut PgConnection, row: &StudioRow) -> Result<Uuid, TenancyError> {
    if !row.billing_consolidated {
        return Ok(row.id);
    }
    let chain = repo::chain_upwards(conn, row.id).await?;
    Ok(chain
        .iter()
        .skip(1)
        .find(|link| link.is_headquarters && !link.deleted)
        .map_or(row.id, |link| link.id))
}

async fn view(conn: &mut PgConnection, row: StudioRow) -> Result<StudioView, TenancyError> {
    let profile = profile_of(&row)?;
    let billing_studio_id = if row.managed {
        Some(billing_studio(conn, &row).await?)
    } else {
        None
    };
    let etag = Etag::of_version(row.id, row.version);
    Ok(StudioView {
        row,
        profile,
        billing_studio_id,
        etag,
    })
}

/// Checks that `studio` (None: a new one) may sit under `parent`: the parent
/// exists, is live, is managed by the caller, and the chain stays a tree of
/// at most four levels. Takes the chain lock first.
async fn check_parent(
    conn: &mut PgConnection,
    studio: Option<Uuid>,
    parent: Uuid,
) -> Result<(), TenancyError> {
    repo::lock_chains(conn).await?;
    let chain = repo::chain_upwards(conn, parent).await?;
    let Some(nearest) = chain.first() else {
        return Err(TenancyError::StudioNotFound);
    };
    if nearest.deleted {
        return Err(TenancyError::ChainInvalid("the parent studio is deleted"));
    }
    if !repo::caller_manages_studio(conn, parent).await? {
        return Err(TenancyError::ChainInvalid(
            "the caller does not manage the parent studio",
        ));
    }
    let height = match studio {
        Some(studio) => repo::subtree_height(conn, studio).await?,
        None => 1,
    };
    let ids: Vec<Uuid> = chain.iter().map(|link| link.id).collect();
    if !domain::chain_allows(studio, &ids, height) {
        return Err(TenancyError::ChainInvalid(
            "a studio cannot sit below itself, and a chain has at most four levels",
        ));
    }
    Ok(())
}

/// One page of a listing.
#[derive(Debug)]
pub(crate) struct StudioPage {
    /// The studios.
    pub studios: Vec<StudioView>,
    /// Where the next page starts, if there is one.
    pub next: Option<(DateTime<Utc>, Uuid)>,
}

impl Directory {
    /// Creates a studio owned by the caller, optionally as a location of a
    /// chain the caller manages.
    pub(crate) async fn create_studio(
        &self,
        principal: &Principal,
        profile: StudioProfile,
        bank_account: Option<BankAccount>,
        request: Idempotency,
    ) -> Result<StudioView, TenancyError> {
        let studio_id = Uuid::now_v7();
        let sealed = match &bank_account {
            Some(account) => Some(self.seal_bank_account(studio_id, TABLE, account).await?),
            None => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) =
                idempotency::claim(&mut tx, key, hash, studio_id).await?
        {
            let row = repo::studio(&mut tx, existing, false)
                .await?
                .ok_or(TenancyError::StudioNotFound)?;
            let view = view(&mut tx, row).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(view);
        }
        if let Some(parent) = profile.parent_studio_id {
            check_parent(&mut tx, None, parent).await?;
        }
        repo::insert_studio(
            &mut tx,
            studio_id,
            principal.user_id,
            &profile,
            sealed.as_deref(),
        )
        .await?;
        let owners = repo::studio_chain_owners(&mut tx, studio_id).await?;
        super::claims::invalidate(&mut tx, &domain::studio_change_stale(&[], &owners)).await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Create, TABLE, studio_id)
            .actor_user(principal.user_id)
            .tenant(studio_id)
            .change("name", "", &profile.name)
            .change(
                "parent_studio_id",
                "",
                &profile
                    .parent_studio_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            );
        if bank_account.is_some() {
            event = event.changed_field("bank_account");
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let row = repo::studio(&mut tx, studio_id, false)
            .await?
            .ok_or(TenancyError::StudioNotFound)?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    /// A studio: live ones for anyone, deleted ones for their managers.
    pub(crate) async fn studio(
        &self,
        principal: &Principal,
        studio_id: Uuid,
        for_billing: bool,
    ) -> Result<StudioView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::studio(&mut tx, studio_id, false)
            .await?
            .filter(|row| row.deleted_at.is_none() || row.managed)
            .ok_or(TenancyError::StudioNotFound)?;
        let mut view = view(&mut tx, row).await?;
        if for_billing && view.billing_studio_id.is_none() {
            view.billing_studio_id = Some(billing_studio(&mut tx, &view.row).await?);
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    /// A page of studios matching `filter`.
    pub(crate) async fn list_studios(
        &self,
        principal: &Principal,
        filter: &StudioFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: usize,
    ) -> Result<StudioPage, TenancyError> {
        // The gate is never closed.
        let _turn = self.listings.acquire().await.ok();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut rows = repo::list_studios(&mut tx, filter, after, limit).await?;
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|row| (row.created_at, row.id))
        } else {
            None
        };
        let mut studios = Vec::with_capacity(rows.len());
        for row in rows {
            studios.push(view(&mut tx, row).await?);
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(StudioPage { studios, next })
    }

    /// Locks a studio the caller manages for a change.
    pub(crate) async fn managed_studio(
        conn: &mut PgConnection,
        studio_id: Uuid,
    ) -> Result<StudioRow, TenancyError> {
        // Read first: a row the caller may not update is invisible to
        // SELECT … FOR UPDATE under row-level security, and a foreign
        // studio's directory card is no secret, so say "not managed".
        let row = repo::studio(conn, studio_id, false)
            .await?
            .ok_or(TenancyError::StudioNotFound)?;
        if !row.managed {
            if row.deleted_at.is_some() {
                return Err(TenancyError::StudioNotFound);
            }
            return Err(TenancyError::StudioNotManaged);
        }
        repo::studio(conn, studio_id, true)
            .await?
            .ok_or(TenancyError::StudioNotFound)
    }

    /// Changes the patched fields of a studio the caller manages.
    pub(crate) async fn update_studio(
        &self,
        principal: &Principal,
        studio_id: Uuid,
        etag: &str,
        patch: StudioPatch,
    ) -> Result<StudioView, TenancyError> {
        let sealed = match &patch.bank_account {
            Some(Some(account)) => {
                // Authorize before sealing: sealing creates the studio's data
                // key on first use, which no stranger may cause.
                let mut check = fitflow_db::tx(&self.pool, &user(principal)).await?;
                Self::managed_studio(&mut check, studio_id).await?;
                check.commit().await.map_err(fitflow_db::DbError::from)?;
                Some(self.seal_bank_account(studio_id, TABLE, account).await?)
            }
            _ => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        // A move takes the chain lock before the studio's row lock, in the
        // order every other chain change takes them: locking the row first
        // deadlocked two crossed moves (each waiting for the chain lock while
        // the other's foreign-key check waited for its row), and PostgreSQL's
        // deadlock abort surfaced as INTERNAL.
        if patch.parent_studio_id.is_some() {
            repo::lock_chains(&mut tx).await?;
        }
        let row = Self::managed_studio(&mut tx, studio_id).await?;
        Etag::of_version(row.id, row.version).check(etag)?;
        soft_delete::check_mutable(RESOURCE, row.deleted_at)?;
        let mut profile = profile_of(&row)?;
        let changed = patch.apply(&mut profile);
        if changed.is_empty() {
            let view = view(&mut tx, row).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(view);
        }
        if changed.contains(&"parent_studio_id")
            && let Some(parent) = profile.parent_studio_id
        {
            check_parent(&mut tx, Some(studio_id), parent).await?;
        }
        let bank = match &patch.bank_account {
            None => SealedUpdate::Keep,
            Some(None) => SealedUpdate::Set(None),
            Some(Some(_)) => SealedUpdate::Set(sealed.as_deref()),
        };
        let moved = changed.contains(&"parent_studio_id");
        let owners_before = if moved {
            repo::studio_chain_owners(&mut tx, studio_id).await?
        } else {
            Vec::new()
        };
        repo::update_studio(&mut tx, studio_id, &profile, bank).await?;
        if moved {
            let owners_after = repo::studio_chain_owners(&mut tx, studio_id).await?;
            let stale = domain::studio_change_stale(&owners_before, &owners_after);
            super::claims::invalidate(&mut tx, &stale).await?;
        }
        let mut event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, studio_id)
            .actor_user(principal.user_id)
            .tenant(studio_id);
        for field in changed {
            event = event.changed_field(field);
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let row = repo::studio(&mut tx, studio_id, false)
            .await?
            .ok_or(TenancyError::StudioNotFound)?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    /// Soft-deletes (`delete`) or restores a studio the caller manages.
    pub(crate) async fn set_studio_deleted(
        &self,
        principal: &Principal,
        studio_id: Uuid,
        etag: &str,
        delete: bool,
    ) -> Result<StudioView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        // Deletes and restores change which studios a chain holds.
        repo::lock_chains(&mut tx).await?;
        let row = Self::managed_studio(&mut tx, studio_id).await?;
        Etag::of_version(row.id, row.version).check(etag)?;
        if delete {
            if soft_delete::check_delete(RESOURCE, row.deleted_at, false)?
                == DeleteStep::AlreadyDeleted
            {
                let view = view(&mut tx, row).await?;
                tx.commit().await.map_err(fitflow_db::DbError::from)?;
                return Ok(view);
            }
            if repo::studio_in_use(&mut tx, studio_id).await? {
                return Err(TenancyError::StudioInUse);
            }
        } else {
            soft_delete::check_undelete(RESOURCE, row.deleted_at)?;
            if let Some(parent) = row.parent_studio_id {
                let chain = repo::chain_upwards(&mut tx, parent).await?;
                if chain.first().is_none_or(|link| link.deleted) {
                    return Err(TenancyError::ChainInvalid("the parent studio is deleted"));
                }
            }
        }
        repo::set_studio_deleted(&mut tx, studio_id, delete).await?;
        // Every owner up the chain gains or loses the studio in `studios`.
        let owners = repo::studio_chain_owners(&mut tx, studio_id).await?;
        super::claims::invalidate(&mut tx, &domain::studio_change_stale(&owners, &[])).await?;
        let action = if delete {
            Action::Delete
        } else {
            Action::Update
        };
        let event = AuditEventBuilder::new(SERVICE, action, TABLE, studio_id)
            .actor_user(principal.user_id)
            .tenant(studio_id)
            .changed_field("deleted_at")
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let row = repo::studio(&mut tx, studio_id, false)
            .await?
            .ok_or(TenancyError::StudioNotFound)?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    /// A managed studio's bank account, with an access event.
    pub(crate) async fn studio_bank_account(
        &self,
        principal: &Principal,
        studio_id: Uuid,
    ) -> Result<Option<BankAccount>, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let row = repo::studio(&mut tx, studio_id, false)
            .await?
            .ok_or(TenancyError::StudioNotFound)?;
        if !row.managed {
            return Err(if row.deleted_at.is_some() {
                TenancyError::StudioNotFound
            } else {
                TenancyError::StudioNotManaged
            });
        }
        let sealed = repo::studio_bank_account(&mut tx, studio_id).await?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Read, "studio_bank_accounts", studio_id)
                .actor_user(principal.user_id)
                .tenant(studio_id)
                .purpose(Purpose::Payment)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let account = match sealed {
            Some(sealed) => Some(self.open_bank_account(studio_id, TABLE, &sealed).await?),
            None => None,
        };
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(account)
    }
}
