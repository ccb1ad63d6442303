//! Client records: create, read (an access event each), update, soft
//! delete and undelete, and lists that never open health information.

use chrono::{DateTime, Utc};
use fitflow_api::etag::Etag;
use fitflow_api::idempotency::{self, Claim};
use fitflow_api::soft_delete::{self, DeleteStep};
use fitflow_auth::{Principal, Role};
use fitflow_crypto::BlindIndexer;
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use uuid::Uuid;

use super::{ClientBook, Idempotency, commit, event, plain_record, reach, user};
use crate::domain::{self, AccessLevel, ClientRecord, Source, Status};
use crate::repo::{self, ClientRow, Finder, SummaryRow};
use crate::seal::{Lookups, Sealer, TABLE};
use crate::{ClientsError, SERVICE};

/// A whole client record as returned.
#[derive(Debug, Clone)]
pub(crate) struct ClientView {
    pub id: Uuid,
    pub owner: Uuid,
    pub record: ClientRecord,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub etag: Etag,
    pub level: AccessLevel,
}

/// A client as lists show it.
#[derive(Clone)]
pub(crate) struct SummaryView {
    pub id: Uuid,
    pub owner: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub status: Status,
    pub source: Source,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub level: AccessLevel,
}

/// What a list asks for.
#[derive(Debug, Clone)]
pub(crate) enum ListQuery {
    /// Everyone the caller may see.
    All,
    /// An exact email.
    Email(String),
    /// An exact phone.
    Phone(String),
    /// A name prefix (already folded, 3 to 12 letters) and the query as
    /// typed (whole names are compared against it).
    NamePrefix { indexed: String, typed: String },
}

impl ClientBook {
    async fn view(&self, row: &ClientRow, level: AccessLevel) -> Result<ClientView, ClientsError> {
        let mut record = plain_record(row)?;
        self.sealer
            .open_into(row.id, &row.sealed(), &mut record)
            .await?;
        Ok(ClientView {
            id: row.id,
            owner: row.trainer_id,
            record,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            etag: Etag::of_version(row.id, row.version),
            level,
        })
    }

    pub(crate) async fn summary(
        &self,
        row: &SummaryRow,
        level: AccessLevel,
    ) -> Result<SummaryView, ClientsError> {
        let (first_name, last_name) = self
            .sealer
            .open_names(row.id, &row.first_name, &row.last_name)
            .await?;
        Ok(SummaryView {
            id: row.id,
            owner: row.trainer_id,
            first_name,
            last_name,
            status: Status::parse(&row.status).ok_or(ClientsError::Corrupt("status"))?,
            source: Source::parse(&row.source).ok_or(ClientsError::Corrupt("source"))?,
            created_at: row.created_at,
            deleted_at: row.deleted_at,
            level,
        })
    }

    /// Creates a client owned by `owner` (the caller or a trainer they act
    /// for) with a key of its own.
    pub(crate) async fn create(
        &self,
        principal: &Principal,
        owner: Option<Uuid>,
        record: ClientRecord,
        request: Idempotency,
    ) -> Result<ClientView, ClientsError> {
        principal.require_role(Role::Trainer)?;
        let owner = owner.unwrap_or(principal.user_id);
        if !principal.acts_for(owner) {
            return Err(ClientsError::AccessLevelInsufficient);
        }
        record.apply_consent_rule_on_create()?;
        let client_id = Uuid::now_v7();
        // Before the transaction: the index key may need a pooled connection.
        let indexer = self.sealer.indexer().await?;
        let lookups = self.sealer.lookups(&indexer, owner, &record)?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        if let Some((key, hash)) = &request.0
            && let Claim::Replay(existing) =
                idempotency::claim(&mut tx, key, hash, client_id).await?
        {
            let (row, level) =
                reach(&mut tx, principal, existing, AccessLevel::Read, false).await?;
            commit(tx).await?;
            return self.view(&row, level).await;
        }
        // The key is made inside the transaction, after the idempotency
        // claim, so a replay never leaves an unused key behind; if anything
        // below fails, the new key is destroyed again.
        self.sealer.create_key(client_id).await?;
        let written = self
            .insert_new(&mut tx, principal, client_id, owner, &record, &lookups)
            .await;
        let result = match written {
            Ok(()) => commit(tx).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            if let Err(cleanup) = self.sealer.destroy_key(client_id).await {
                tracing::warn!(%client_id, error = %cleanup, "could not destroy the key of a client that was not created");
            }
            return Err(error);
        }
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, level) = reach(&mut tx, principal, client_id, AccessLevel::Read, false).await?;
        commit(tx).await?;
        self.view(&row, level).await
    }

    async fn insert_new(
        &self,
        tx: &mut fitflow_db::Tx,
        principal: &Principal,
        client_id: Uuid,
        owner: Uuid,
        record: &ClientRecord,
        lookups: &Lookups,
    ) -> Result<(), ClientsError> {
        let sealed = self.sealer.seal(client_id, record).await?;
        repo::insert_client(tx, client_id, owner, record, &sealed, lookups).await?;
        let mut audit = event(principal, Action::Create, TABLE, client_id, owner).change(
            "status",
            "",
            record.status.as_str(),
        );
        for field in record.fields_set() {
            if field != "status" {
                audit = audit.changed_field(field);
            }
        }
        fitflow_outbox::record(tx, &audit.build()).await?;
        Ok(())
    }

    /// The whole record, with an access event for `purpose` written in the
    /// same transaction as the read.
    pub(crate) async fn get(
        &self,
        principal: &Principal,
        client_id: Uuid,
        purpose: Purpose,
        show_deleted: bool,
    ) -> Result<ClientView, ClientsError> {
        // The tenant is the owner the read finds; the repository fills it in.
        let access = AuditEventBuilder::new(SERVICE, Action::Read, TABLE, client_id)
            .actor_user(principal.user_id)
            .purpose(purpose)
            .build();
        // The read and its event commit together, in one round trip: no
        // event, no data. A field that then fails to open leaves an event
        // for a read that returned an error — recorded, never missed.
        let row =
            repo::client_read_recorded(&self.express, principal, client_id, show_deleted, &access)
                .await?
                .ok_or(ClientsError::ClientNotFound)?;
        // Row-level security showed the row, so the caller reaches it; the
        // same rule is checked here, in the handler, as well.
        let level = domain::require(
            domain::caller_level(principal, row.trainer_id, row.share()),
            AccessLevel::Read,
        )?;
        self.view(&row, level).await
    }

    /// Changes the `fields` of a client the caller may write, if `etag` is current.
    pub(crate) async fn update(
        &self,
        principal: &Principal,
        client_id: Uuid,
        etag: &str,
        fields: &[&'static str],
        patch: &ClientRecord,
    ) -> Result<ClientView, ClientsError> {
        // Before the transaction: the index key may need a pooled connection.
        let indexer = self.sealer.indexer().await?;
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, level) = reach(&mut tx, principal, client_id, AccessLevel::Write, true).await?;
        soft_delete::check_mutable("client", row.deleted_at)?;
        Etag::of_version(row.id, row.version).check(etag)?;
        let current = self.view(&row, level).await?.record;
        let mut record = current.clone();
        for field in fields {
            record.take_field(patch, field);
        }
        if fields.contains(&"medical_info") && record.consent_missing() {
            // Asked to store health information without consent: refuse
            // rather than drop it silently.
            return Err(ClientsError::ConsentRequired);
        }
        record.apply_consent_rule();
        let changed: Vec<&str> = domain::FIELDS
            .into_iter()
            .filter(|field| record.field_differs(&current, field))
            .collect();
        if changed.is_empty() {
            commit(tx).await?;
            return self.view(&row, level).await;
        }
        let sealed = self.sealer.seal(client_id, &record).await?;
        let lookups = self.sealer.lookups(&indexer, row.trainer_id, &record)?;
        repo::update_client(&mut tx, client_id, &record, &sealed, &lookups).await?;
        let mut audit = event(principal, Action::Update, TABLE, client_id, row.trainer_id);
        for field in changed {
            audit = match field {
                "status" => audit.change("status", current.status.as_str(), record.status.as_str()),
                "source" => audit.change("source", current.source.as_str(), record.source.as_str()),
                other => audit.changed_field(other),
            };
        }
        fitflow_outbox::record(&mut tx, &audit.build()).await?;
        let (row, level) = reach(&mut tx, principal, client_id, AccessLevel::Read, false).await?;
        let view = self.view(&row, level).await?;
        commit(tx).await?;
        Ok(view)
    }

    /// Soft-deletes (`delete`) or restores a client the caller administers.
    pub(crate) async fn set_deleted(
        &self,
        principal: &Principal,
        client_id: Uuid,
        delete: bool,
        etag: &str,
    ) -> Result<SummaryView, ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, level) = reach(&mut tx, principal, client_id, AccessLevel::Admin, true).await?;
        if delete {
            Etag::of_version(row.id, row.version).check(etag)?;
            // Without allow_missing, a second delete is refused (AIP-164).
            let _step: DeleteStep = soft_delete::check_delete("client", row.deleted_at, false)?;
        } else {
            soft_delete::check_undelete("client", row.deleted_at)?;
        }
        repo::set_deleted(&mut tx, client_id, delete).await?;
        let (action, old, new) = if delete {
            (Action::Delete, "false", "true")
        } else {
            (Action::Update, "true", "false")
        };
        let audit = event(principal, action, TABLE, client_id, row.trainer_id)
            .change("deleted", old, new)
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        let summary = self.summary(&summary_of(&row, delete), level).await?;
        commit(tx).await?;
        Ok(summary)
    }

    /// One page of the clients the caller may see, with one access event
    /// naming them; `after` resumes a previous page.
    pub(crate) async fn list(
        &self,
        principal: &Principal,
        query: &ListQuery,
        owner: Option<Uuid>,
        show_deleted: bool,
        after: Option<(DateTime<Utc>, Uuid)>,
        page_size: u32,
    ) -> Result<(Vec<SummaryView>, Option<(DateTime<Utc>, Uuid)>), ClientsError> {
        // Before the transaction: the index key may need a pooled connection.
        let indexer = match query {
            ListQuery::All => None,
            _ => Some(self.sealer.indexer().await?),
        };
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let mut acting_for = vec![principal.user_id];
        acting_for.extend(principal.supervised_trainer_ids.iter().copied());
        let finder = if let Some(indexer) = &indexer {
            // Indexes are scoped by owner: compute one per owner whose
            // clients the caller may see.
            let mut owners = acting_for.clone();
            for shared in repo::shared_owners(&mut tx, principal.user_id).await? {
                if !owners.contains(&shared) {
                    owners.push(shared);
                }
            }
            if let Some(owner) = owner {
                owners.retain(|candidate| *candidate == owner);
            }
            finder_of(indexer, query, &owners)
        } else {
            Finder::All
        };
        let limit = i64::from(page_size) + 1;
        let spec = repo::ListSpec {
            caller: principal.user_id,
            acting_for: &acting_for,
            finder,
            owner,
            show_deleted,
            after,
            limit,
        };
        let mut rows = repo::list_clients(&mut tx, &spec).await?;
        let next =
            fitflow_api::page::split_page(&mut rows, page_size, |row| (row.created_at, row.id));
        let mut shown = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(level) = domain::caller_level(principal, row.trainer_id, row.share()) else {
                continue;
            };
            let summary = self.summary(row, level).await?;
            if let ListQuery::NamePrefix { typed, .. } = query
                && !domain::name_matches(&summary.first_name, &summary.last_name, typed)
            {
                // A truncated token matched by chance (or a padding value).
                continue;
            }
            shown.push(summary);
        }
        if !shown.is_empty() {
            let mut access =
                AuditEventBuilder::new(SERVICE, Action::Read, "client_list", Uuid::new_v4())
                    .actor_user(principal.user_id)
                    .tenant(principal.user_id)
                    .purpose(Purpose::Operations);
            for summary in &shown {
                access = access.change("client_id", "", &summary.id.to_string());
            }
            fitflow_outbox::record(&mut tx, &access.build()).await?;
        }
        commit(tx).await?;
        Ok((shown, next))
    }
}

/// Which rows a search reads: the query's blind indexes (or name tokens)
/// under each owner whose clients the caller may see.
fn finder_of(indexer: &BlindIndexer, query: &ListQuery, owners: &[Uuid]) -> Finder {
    match query {
        ListQuery::All => Finder::All,
        ListQuery::Email(email) => Finder::Email(
            owners
                .iter()
                .map(|owner| Sealer::email_index(indexer, *owner, email))
                .collect(),
        ),
        ListQuery::Phone(phone) => Finder::Phone(
            owners
                .iter()
                .map(|owner| Sealer::phone_index(indexer, *owner, phone))
                .collect(),
        ),
        ListQuery::NamePrefix { indexed, .. } => Finder::NameTokens(
            owners
                .iter()
                .map(|owner| Sealer::prefix_token(indexer, *owner, indexed))
                .collect(),
        ),
    }
}

/// The summary columns of a full row, as they are after a (un)delete.
fn summary_of(row: &ClientRow, deleted: bool) -> SummaryRow {
    SummaryRow {
        id: row.id,
        trainer_id: row.trainer_id,
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        source: row.source.clone(),
        status: row.status.clone(),
        created_at: row.created_at,
        deleted_at: if deleted { Some(Utc::now()) } else { None },
        share_level: row.share_level.clone(),
    }
}

impl ClientRecord {
    /// On create there is nothing to withdraw: health information without
    /// consent is refused rather than dropped.
    fn apply_consent_rule_on_create(&self) -> Result<(), ClientsError> {
        if self.consent_missing() {
            Err(ClientsError::ConsentRequired)
        } else {
            Ok(())
        }
    }
}
