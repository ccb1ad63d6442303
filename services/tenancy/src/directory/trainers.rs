//! Trainer profiles, their sealed bank accounts and tax profiles.

use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::Principal;
use fitflow_error::{ApiError, Violations};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use super::{Directory, Idempotency, user};
use crate::domain::{BankAccount, SupplierStatus, TaxProfile, TrainerProfile};
use crate::formats::Province;
use crate::repo::{self, SealedUpdate, TrainerRow};
use crate::{SERVICE, TenancyError};

const TABLE: &str = "trainers";

/// A trainer profile as returned.
#[derive(Debug, Clone)]
pub(crate) struct TrainerView {
    /// The stored row.
    pub row: TrainerRow,
    /// Its profile.
    pub profile: TrainerProfile,
    /// Its etag.
    pub etag: Etag,
    /// Read by a studio the trainer has a contract with: only the public
    /// card (names, specializations, bio, zone, province) may be shown.
    pub card_only: bool,
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub(crate) struct TrainerPatch {
    /// New business name.
    pub business_name: Option<String>,
    /// New licence number.
    pub license_number: Option<String>,
    /// New specializations.
    pub specializations: Option<Vec<String>>,
    /// New biography.
    pub bio: Option<String>,
    /// New hourly rate (or cleared).
    pub hourly_rate: Option<Option<rust_decimal::Decimal>>,
    /// New commission (or cleared).
    pub commission_rate: Option<Option<rust_decimal::Decimal>>,
    /// New zone.
    pub time_zone: Option<String>,
    /// New province.
    pub province: Option<Province>,
    /// New settings.
    pub settings: Option<std::collections::BTreeMap<String, String>>,
    /// New tax profile (or cleared).
    pub tax_profile: Option<Option<TaxProfile>>,
    /// New bank account (or cleared).
    pub bank_account: Option<Option<BankAccount>>,
}

impl TrainerPatch {
    /// Applies the patch to `profile`; returns the names of the fields it
    /// changes (bank_account included), for the audit event.
    fn apply(&self, profile: &mut TrainerProfile) -> Vec<&'static str> {
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
        set!(business_name);
        set!(license_number);
        set!(specializations);
        set!(bio);
        set!(hourly_rate);
        set!(commission_rate);
        set!(time_zone);
        set!(province);
        set!(settings);
        set!(tax_profile);
        if self.bank_account.is_some() {
            changed.push("bank_account");
        }
        changed
    }
}

/// The cross-field rule of a whole profile: its tax profile fits its province.
fn check_profile(profile: &TrainerProfile) -> Result<(), ApiError> {
    let mut violations = Violations::new();
    if let Some(tax) = &profile.tax_profile {
        for (field, problem) in tax.problems(profile.province) {
            violations.add(format!("trainer.tax_profile.{field}"), problem);
        }
    }
    violations.into_result()
}

/// The profile a stored row holds.
pub(crate) fn profile_of(row: &TrainerRow) -> Result<TrainerProfile, TenancyError> {
    let province = Province::from_code(&row.province).ok_or(TenancyError::Corrupt("province"))?;
    let tax_profile = match &row.supplier_status {
        None => None,
        Some(status) => Some(TaxProfile {
            supplier_status: SupplierStatus::parse(status)
                .ok_or(TenancyError::Corrupt("supplier_status"))?,
            gst_hst_number: row.gst_hst_number.clone(),
            qst_number: row.qst_number.clone(),
        }),
    };
    Ok(TrainerProfile {
        business_name: row.business_name.clone(),
        license_number: row.license_number.clone(),
        specializations: row.specializations.clone(),
        bio: row.bio.clone(),
        hourly_rate: row.hourly_rate,
        commission_rate: row.commission_rate,
        time_zone: row.time_zone.clone(),
        province,
        settings: row.settings.0.clone(),
        tax_profile,
    })
}

pub(crate) fn view(row: TrainerRow) -> Result<TrainerView, TenancyError> {
    let profile = profile_of(&row)?;
    let etag = Etag::of_version(row.id, row.version);
    Ok(TrainerView {
        row,
        profile,
        etag,
        card_only: false,
    })
}

impl Directory {
    /// Creates the caller's own trainer profile after identity confirms the
    /// account is active.
    pub(crate) async fn create_trainer(
        &self,
        principal: &Principal,
        profile: TrainerProfile,
        bank_account: Option<BankAccount>,
        request: Idempotency,
    ) -> Result<TrainerView, TenancyError> {
        check_profile(&profile)?;
        let trainer_id = principal.user_id;
        self.accounts.require_active(trainer_id).await?;
        let sealed = match &bank_account {
            Some(account) => Some(self.seal_bank_account(trainer_id, TABLE, account).await?),
            None => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(_) = idempotency::claim(&mut tx, key, hash, trainer_id).await?
        {
            let row = repo::trainer(&mut tx, trainer_id, false)
                .await?
                .ok_or(TenancyError::TrainerNotFound)?;
            return view(row);
        }
        if !repo::insert_trainer(&mut tx, trainer_id, &profile, sealed.as_deref()).await? {
            return Err(TenancyError::TrainerExists);
        }
        let mut event = AuditEventBuilder::new(SERVICE, Action::Create, TABLE, trainer_id)
            .actor_user(principal.user_id)
            .tenant(trainer_id)
            .change("province", "", profile.province.code())
            .change("time_zone", "", &profile.time_zone);
        if profile.tax_profile.is_some() {
            event = event.changed_field("tax_profile");
        }
        if bank_account.is_some() {
            event = event.changed_field("bank_account");
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let row = repo::trainer(&mut tx, trainer_id, false)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        view(row)
    }

    /// A trainer profile the caller acts for (themselves or a trainer in
    /// their team); to anyone else it does not exist.
    pub(crate) async fn trainer(
        &self,
        principal: &Principal,
        trainer_id: Uuid,
    ) -> Result<TrainerView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let card_only = if repo::caller_acts_for(&mut tx, trainer_id).await? {
            false
        } else if repo::caller_contracts_with(&mut tx, trainer_id).await? {
            true
        } else {
            return Err(TenancyError::TrainerNotFound);
        };
        let row = repo::trainer(&mut tx, trainer_id, false)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(TrainerView {
            card_only,
            ..view(row)?
        })
    }

    /// Changes the patched fields of a profile the caller acts for, if
    /// `etag` is still current.
    pub(crate) async fn update_trainer(
        &self,
        principal: &Principal,
        trainer_id: Uuid,
        etag: &str,
        patch: TrainerPatch,
    ) -> Result<TrainerView, TenancyError> {
        let sealed = match &patch.bank_account {
            Some(Some(account)) => {
                // Authorize before sealing: sealing creates the tenant's data
                // key on first use, which no stranger may cause.
                let mut check = fitflow_db::tx(&self.pool, &user(principal)).await?;
                if !repo::caller_acts_for(&mut check, trainer_id).await?
                    || repo::trainer(&mut check, trainer_id, false)
                        .await?
                        .is_none()
                {
                    return Err(TenancyError::TrainerNotFound);
                }
                check.commit().await.map_err(fitflow_db::DbError::from)?;
                Some(self.seal_bank_account(trainer_id, TABLE, account).await?)
            }
            _ => None,
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if !repo::caller_acts_for(&mut tx, trainer_id).await? {
            return Err(TenancyError::TrainerNotFound);
        }
        let row = repo::trainer(&mut tx, trainer_id, true)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        let mut profile = profile_of(&row)?;
        let changed = patch.apply(&mut profile);
        if changed.is_empty() {
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return view(row);
        }
        check_profile(&profile)?;
        let bank = match &patch.bank_account {
            None => SealedUpdate::Keep,
            Some(None) => SealedUpdate::Set(None),
            Some(Some(_)) => SealedUpdate::Set(sealed.as_deref()),
        };
        repo::update_trainer(&mut tx, trainer_id, &profile, bank).await?;
        let mut event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, trainer_id)
            .actor_user(principal.user_id)
            .tenant(trainer_id);
        for field in changed {
            event = event.changed_field(field);
        }
        fitflow_outbox::record(&mut tx, &event.build()).await?;
        let row = repo::trainer(&mut tx, trainer_id, false)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        view(row)
    }

    /// The caller's own bank account (not a supervisor's reach), with an
    /// access event written in the same transaction as the read.
    pub(crate) async fn trainer_bank_account(
        &self,
        principal: &Principal,
        trainer_id: Uuid,
    ) -> Result<Option<BankAccount>, TenancyError> {
        if principal.user_id != trainer_id {
            return Err(TenancyError::TrainerNotFound);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let sealed = repo::trainer_bank_account(&mut tx, trainer_id)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Read, "trainer_bank_accounts", trainer_id)
                .actor_user(principal.user_id)
                .tenant(trainer_id)
                .purpose(Purpose::Payment)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let account = match sealed {
            Some(sealed) => Some(self.open_bank_account(trainer_id, TABLE, &sealed).await?),
            None => None,
        };
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(account)
    }

    /// Billing's read of what an invoice prints, with an access event.
    pub(crate) async fn tax_profile(&self, trainer_id: Uuid) -> Result<TrainerView, TenancyError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let row = repo::trainer(&mut tx, trainer_id, false)
            .await?
            .ok_or(TenancyError::TrainerNotFound)?;
        let event =
            AuditEventBuilder::new(SERVICE, Action::Read, "trainer_tax_profiles", trainer_id)
                // The audit service admits only the sending service as a
                // service actor (it cannot verify another peer), so naming
                // billing here had every one of these events dead-lettered.
                // Only billing may call GetTaxProfile, so tenancy as the
                // actor with purpose PAYMENT still says who read it.
                .actor_service(SERVICE)
                .tenant(trainer_id)
                .purpose(Purpose::Payment)
                .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        view(row)
    }

    /// What `user_id` acts for, for identity's tokens: at most `limit` ids of
    /// each kind, and whether either list was cut.
    pub(crate) async fn acting_for(
        &self,
        user_id: Uuid,
        limit: usize,
    ) -> Result<(Vec<Uuid>, Vec<Uuid>, bool), TenancyError> {
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let (mut trainers, mut studios) =
            repo::acting_for(&mut tx, user_id, i64::try_from(limit).unwrap_or(i64::MAX)).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        let truncated = trainers.len() > limit || studios.len() > limit;
        trainers.truncate(limit);
        studios.truncate(limit);
        Ok((trainers, studios, truncated))
    }
}
