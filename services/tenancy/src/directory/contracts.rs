//! Contracts between trainers and studios, and their rates by date.

use chrono::{DateTime, NaiveDate, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_auth::{Caller, Principal};
use fitflow_outbox::{Action, AuditEventBuilder};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Directory, Idempotency, user};
use crate::domain::{self, ClassCategory, ContractRefusal, ContractState, Rates};
use crate::letters::ContractInvitationLetter;
use crate::repo::{self, ContractRow, Party, RateRow};
use crate::{SERVICE, TenancyError};

const TABLE: &str = "contracts";

/// Who a studio invites.
#[derive(Debug, Clone)]
pub(crate) enum TrainerRef {
    /// By trainer id.
    Id(Uuid),
    /// By the email of their account (normalised).
    Email(String),
}

/// An invitation.
#[derive(Debug, Clone)]
pub(crate) struct NewContract {
    /// The inviting studio.
    pub studio_id: Uuid,
    /// The trainer.
    pub trainer: TrainerRef,
    /// `contractor` or `employee`.
    pub role: &'static str,
    /// First day covered.
    pub start_date: NaiveDate,
    /// Rates from the first day.
    pub rates: Rates,
}

/// A contract as returned.
#[derive(Debug, Clone)]
pub(crate) struct ContractView {
    /// The stored row.
    pub row: ContractRow,
    /// Its state.
    pub state: ContractState,
    /// The rates in force today (or its first version).
    pub current_rates: Option<RateRow>,
    /// Its etag.
    pub etag: Etag,
}

/// Today's date in the IANA zone `time_zone`.
fn today_in(time_zone: &str) -> Result<NaiveDate, TenancyError> {
    let zone: chrono_tz::Tz = time_zone
        .parse()
        .map_err(|_| TenancyError::Corrupt("time zone"))?;
    Ok(Utc::now().with_timezone(&zone).date_naive())
}

async fn view(conn: &mut PgConnection, row: ContractRow) -> Result<ContractView, TenancyError> {
    let state = ContractState::parse(&row.state).ok_or(TenancyError::Corrupt("state"))?;
    let today = today_in(&row.time_zone)?;
    let current_rates = repo::rates_as_of(conn, row.id, today).await?;
    let etag = Etag::of_version(row.id, row.version);
    Ok(ContractView {
        row,
        state,
        current_rates,
        etag,
    })
}

/// Which side of a contract the caller is on.
struct Sides {
    trainer: bool,
    studio: bool,
}

async fn sides(conn: &mut PgConnection, row: &ContractRow) -> Result<Sides, TenancyError> {
    Ok(Sides {
        trainer: repo::caller_acts_for(conn, row.trainer_id).await?,
        studio: repo::caller_manages_studio(conn, row.studio_id).await?,
    })
}

/// A contract the caller is a party to, locked when `lock`.
async fn party_contract(
    conn: &mut PgConnection,
    contract_id: Uuid,
    lock: bool,
) -> Result<(ContractRow, Sides), TenancyError> {
    let row = repo::contract(conn, contract_id, lock)
        .await?
        .ok_or(TenancyError::ContractNotFound)?;
    let sides = sides(conn, &row).await?;
    if !sides.trainer && !sides.studio {
        return Err(TenancyError::ContractNotFound);
    }
    Ok((row, sides))
}

fn refused(refusal: ContractRefusal) -> TenancyError {
    TenancyError::ContractRefused(refusal)
}

/// A page of contracts.
#[derive(Debug)]
pub(crate) struct ContractPage {
    /// The contracts.
    pub contracts: Vec<ContractView>,
    /// Where the next page starts.
    pub next: Option<(DateTime<Utc>, Uuid)>,
}

impl Directory {
    /// A studio the caller manages invites a trainer; the first rate
    /// version takes effect on the start date.
    pub(crate) async fn create_contract(
        &self,
        principal: &Principal,
        invitation: NewContract,
        request: Idempotency,
    ) -> Result<ContractView, TenancyError> {
        let trainer_id = match &invitation.trainer {
            TrainerRef::Id(id) => *id,
            TrainerRef::Email(email) => self.accounts.trainer_id_by_email(email).await?,
        };
        let contract_id = Uuid::now_v7();
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) =
                idempotency::claim(&mut tx, key, hash, contract_id).await?
        {
            let row = repo::contract(&mut tx, existing, false)
                .await?
                .ok_or(TenancyError::ContractNotFound)?;
            let view = view(&mut tx, row).await?;
            tx.commit().await.map_err(fitflow_db::DbError::from)?;
            return Ok(view);
        }
        let studio = Directory::managed_studio(&mut tx, invitation.studio_id).await?;
        fitflow_api::soft_delete::check_mutable("studio", studio.deleted_at)?;
        if studio.status != "active" {
            return Err(TenancyError::StudioInactive);
        }
        if invitation.start_date < today_in(&studio.time_zone)? {
            return Err(refused(ContractRefusal::Backdated));
        }
        if repo::ended_contract_reaches(&mut tx, trainer_id, studio.id, invitation.start_date)
            .await?
        {
            return Err(TenancyError::ContractExists);
        }
        let inserted = repo::insert_contract(
            &mut tx,
            contract_id,
            trainer_id,
            studio.id,
            invitation.role,
            invitation.start_date,
            principal.user_id,
        )
        .await
        .map_err(|error| {
            // The trainer row is invisible to the studio: the foreign key
            // is how a missing trainer shows.
            if repo::is_foreign_key_violation(&error) {
                TenancyError::TrainerNotFound
            } else {
                error.into()
            }
        })?;
        if !inserted {
            return Err(TenancyError::ContractExists);
        }
        repo::insert_rate_version(
            &mut tx,
            contract_id,
            invitation.start_date,
            &invitation.rates,
            principal.user_id,
        )
        .await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Create, TABLE, contract_id)
            .actor_user(principal.user_id)
            .tenant(studio.id)
            .change("trainer_id", "", &trainer_id.to_string())
            .change("studio_id", "", &studio.id.to_string())
            .change("role", "", invitation.role)
            .change("state", "", ContractState::Invited.as_str())
            .change("start_date", "", &invitation.start_date.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let row = repo::contract(&mut tx, contract_id, false)
            .await?
            .ok_or(TenancyError::ContractNotFound)?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        // Only a new invitation is mailed: a replay of its request is not.
        self.letters.send_contract_invitation(
            trainer_id,
            ContractInvitationLetter {
                contract_id,
                studio_name: studio.name,
                role: invitation.role,
                start_date: invitation.start_date,
            },
        );
        Ok(view)
    }

    /// A contract the caller is a party to.
    pub(crate) async fn contract(
        &self,
        principal: &Principal,
        contract_id: Uuid,
    ) -> Result<ContractView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, _) = party_contract(&mut tx, contract_id, false).await?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    /// A page of a trainer's or a studio's contracts.
    pub(crate) async fn list_contracts(
        &self,
        principal: &Principal,
        party: Party,
        state: Option<ContractState>,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: usize,
    ) -> Result<ContractPage, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        match party {
            Party::Trainer(trainer_id) => {
                if !repo::caller_acts_for(&mut tx, trainer_id).await? {
                    return Err(TenancyError::TrainerNotFound);
                }
            }
            Party::Studio(studio_id) => {
                let studio = repo::studio(&mut tx, studio_id, false)
                    .await?
                    .ok_or(TenancyError::StudioNotFound)?;
                if !studio.managed {
                    return Err(TenancyError::StudioNotManaged);
                }
            }
        }
        let limit = i64::try_from(page_size + 1).unwrap_or(i64::MAX);
        let mut rows = repo::list_contracts(&mut tx, party, state, after, limit).await?;
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|row| (row.created_at, row.id))
        } else {
            None
        };
        let mut contracts = Vec::with_capacity(rows.len());
        for row in rows {
            contracts.push(view(&mut tx, row).await?);
        }
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(ContractPage { contracts, next })
    }

    /// The trainer's answer to an invitation.
    pub(crate) async fn answer_contract(
        &self,
        principal: &Principal,
        contract_id: Uuid,
        etag: &str,
        accept: bool,
    ) -> Result<ContractView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, sides) = party_contract(&mut tx, contract_id, true).await?;
        if !sides.trainer {
            return Err(TenancyError::NotTheTrainer);
        }
        Etag::of_version(row.id, row.version).check(etag)?;
        let state = ContractState::parse(&row.state).ok_or(TenancyError::Corrupt("state"))?;
        let next = domain::answer(state, accept).map_err(refused)?;
        self.move_contract(&mut tx, principal, &row, state, next, None)
            .await?;
        let row = repo::contract(&mut tx, contract_id, false)
            .await?
            .ok_or(TenancyError::ContractNotFound)?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    /// Either side ends a contract (or withdraws an invitation).
    pub(crate) async fn end_contract(
        &self,
        principal: &Principal,
        contract_id: Uuid,
        etag: &str,
        end_date: Option<NaiveDate>,
    ) -> Result<ContractView, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, _) = party_contract(&mut tx, contract_id, true).await?;
        Etag::of_version(row.id, row.version).check(etag)?;
        let state = ContractState::parse(&row.state).ok_or(TenancyError::Corrupt("state"))?;
        let today = today_in(&row.time_zone)?;
        let (next, end_date) =
            domain::end(state, row.start_date, end_date, today).map_err(refused)?;
        self.move_contract(&mut tx, principal, &row, state, next, end_date)
            .await?;
        let row = repo::contract(&mut tx, contract_id, false)
            .await?
            .ok_or(TenancyError::ContractNotFound)?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(view)
    }

    async fn move_contract(
        &self,
        conn: &mut PgConnection,
        principal: &Principal,
        row: &ContractRow,
        from: ContractState,
        to: ContractState,
        end_date: Option<NaiveDate>,
    ) -> Result<(), TenancyError> {
        repo::set_contract_state(conn, row.id, to, end_date).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, TABLE, row.id)
            .actor_user(principal.user_id)
            .tenant(row.studio_id)
            .change("state", from.as_str(), to.as_str())
            .change(
                "end_date",
                "",
                &end_date.map(|date| date.to_string()).unwrap_or_default(),
            )
            .build();
        fitflow_outbox::record(conn, &event).await?;
        Ok(())
    }

    /// A studio manager adds a rate version taking effect on `effective`.
    pub(crate) async fn add_rate_version(
        &self,
        principal: &Principal,
        contract_id: Uuid,
        effective: NaiveDate,
        rates: Rates,
    ) -> Result<(ContractView, RateRow), TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, sides) = party_contract(&mut tx, contract_id, true).await?;
        if !sides.studio {
            return Err(TenancyError::StudioNotManaged);
        }
        let state = ContractState::parse(&row.state).ok_or(TenancyError::Corrupt("state"))?;
        let today = today_in(&row.time_zone)?;
        domain::rate_version_allowed(state, row.start_date, effective, today).map_err(refused)?;
        if !repo::insert_rate_version(&mut tx, contract_id, effective, &rates, principal.user_id)
            .await?
        {
            return Err(TenancyError::RateVersionExists);
        }
        let event = AuditEventBuilder::new(SERVICE, Action::Create, "rate_versions", contract_id)
            .actor_user(principal.user_id)
            .tenant(row.studio_id)
            .change("effective_date", "", &effective.to_string())
            .change("group_rate", "", &rates.group.to_string())
            .change("individual_rate", "", &rates.individual.to_string())
            .change("trial_rate", "", &rates.trial.to_string())
            .change("commission_rate", "", &rates.commission.to_string())
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
        let version = repo::rates_as_of(&mut tx, contract_id, effective)
            .await?
            .ok_or(TenancyError::Corrupt("rate version"))?;
        let view = view(&mut tx, row).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok((view, version))
    }

    /// Every rate version of a contract the caller is a party to.
    pub(crate) async fn rate_versions(
        &self,
        principal: &Principal,
        contract_id: Uuid,
    ) -> Result<Vec<RateRow>, TenancyError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        party_contract(&mut tx, contract_id, false).await?;
        let versions = repo::rate_versions(&mut tx, contract_id).await?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        Ok(versions)
    }

    /// The rate in force on `date` for `category` between the pair: for a
    /// user, only when they are a party; for billing, always.
    pub(crate) async fn rate(
        &self,
        caller: &Caller,
        trainer_id: Uuid,
        studio_id: Uuid,
        category: ClassCategory,
        date: NaiveDate,
    ) -> Result<(RateRow, rust_decimal::Decimal), TenancyError> {
        let mut tx = match caller {
            Caller::Service(_) => fitflow_db::system_tx(&self.system).await?,
            _ => fitflow_db::tx(&self.pool, caller).await?,
        };
        if let Caller::User(_) = caller {
            let party = repo::caller_acts_for(&mut tx, trainer_id).await?
                || repo::caller_manages_studio(&mut tx, studio_id).await?;
            if !party {
                return Err(TenancyError::NoContractOnDate);
            }
        }
        let version = repo::rate_on(&mut tx, trainer_id, studio_id, date)
            .await?
            .ok_or(TenancyError::NoContractOnDate)?;
        tx.commit().await.map_err(fitflow_db::DbError::from)?;
        let rate = version.rates().for_category(category);
        Ok((version, rate))
    }
}
