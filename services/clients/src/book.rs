//! The clients service's use cases: each opens one transaction as the
//! caller, establishes the caller's level on the client (row-level security
//! is the second wall), writes its audit or access event in the same
//! transaction and commits only when all of it worked.

mod privacy;
mod records;
mod roster;
mod sharing;

pub(crate) use privacy::Contact;
pub(crate) use records::{ClientView, ListQuery, SummaryView};
pub(crate) use sharing::ShareView;

use fitflow_api::idempotency::{IdempotencyKey, RequestHash};
use fitflow_api::page::PageTokens;
use fitflow_auth::{Caller, Principal};
use fitflow_db::SystemPool;
use fitflow_outbox::{Action, AuditEventBuilder};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, AccessLevel, ClientRecord, Consent, Source, Status};
use crate::repo::ClientRow;
use crate::seal::Sealer;
use crate::{ClientsError, SERVICE};

/// The other services the use cases ask.
pub struct Peers {
    /// Scheduling: a client's appointments, for the export.
    pub appointments: crate::Appointments,
    /// Documentation: a client's notes and plans, for the export.
    pub documentation: crate::Documentation,
    /// Billing: a client's invoices and payments, for the export.
    pub invoices: crate::Invoices,
    /// Identity and tenancy: the trainer behind an email, for a share.
    pub trainers: crate::Trainers,
}

/// The service's state: its pool, the peers it asks, the sealer (client
/// keys and blind indexes), the page-token key and the purge retention
/// period.
pub struct ClientBook {
    pool: PgPool,
    /// Connections of `pool` for one-statement reads ([`fitflow_db::Express`]).
    express: fitflow_db::Express,
    /// The system role's pool: purges, which no user's context may see.
    system: SystemPool,
    appointments: crate::Appointments,
    documentation: crate::Documentation,
    invoices: crate::Invoices,
    trainers: crate::Trainers,
    sealer: Sealer,
    page_tokens: PageTokens,
    retention: chrono::Duration,
}

impl ClientBook {
    /// The use cases over `pool`, asking `peers`; client keys from
    /// `subjects`, blind indexes from `keyring`; purges allowed `retention`
    /// after a soft delete.
    pub fn new(
        pool: PgPool,
        system: SystemPool,
        peers: Peers,
        subjects: fitflow_crypto::SubjectKeys,
        keyring: fitflow_crypto::KeyRing,
        retention: chrono::Duration,
    ) -> Self {
        Self {
            express: fitflow_db::Express::half_of(pool.clone()),
            pool,
            system,
            appointments: peers.appointments,
            documentation: peers.documentation,
            invoices: peers.invoices,
            trainers: peers.trainers,
            sealer: Sealer::new(subjects, keyring),
            page_tokens: PageTokens::with_random_key(),
            retention,
        }
    }

    /// The page-token issuer, for the gRPC layer's List method.
    pub(crate) fn page_tokens(&self) -> &PageTokens {
        &self.page_tokens
    }
}

/// A create's idempotency record: its key and request hash, when the
/// request carried a `request_id` (AIP-155).
#[derive(Debug, Default)]
pub(crate) struct Idempotency(pub Option<(IdempotencyKey, RequestHash)>);

fn user(principal: &Principal) -> Caller {
    Caller::User(principal.clone())
}

async fn commit(tx: fitflow_db::Tx) -> Result<(), ClientsError> {
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(())
}

/// The client row `principal` reaches at `needed` or more, with their level;
/// NOT_FOUND without any access, PERMISSION_DENIED with too little.
async fn reach(
    tx: &mut fitflow_db::Tx,
    principal: &Principal,
    client_id: Uuid,
    needed: AccessLevel,
    lock: bool,
) -> Result<(ClientRow, AccessLevel), ClientsError> {
    if let Some(row) = crate::repo::client(tx, client_id, principal.user_id, lock).await? {
        let level = domain::require(
            domain::caller_level(principal, row.trainer_id, row.share()),
            needed,
        )?;
        return Ok((row, level));
    }
    if !lock {
        return Err(ClientsError::ClientNotFound);
    }
    // FOR UPDATE also applies the row's UPDATE policy, which hides the
    // client from a grantee who may only read it: look again without the
    // lock, so that grantee hears "insufficient", not "not found".
    let row = crate::repo::client(tx, client_id, principal.user_id, false)
        .await?
        .ok_or(ClientsError::ClientNotFound)?;
    domain::require(
        domain::caller_level(principal, row.trainer_id, row.share()),
        needed,
    )?;
    Err(ClientsError::AccessLevelInsufficient)
}

/// The plain (unsealed) fields of a row, in a record whose sealed fields the
/// sealer fills.
fn plain_record(row: &ClientRow) -> Result<ClientRecord, ClientsError> {
    let consent = match (&row.consent_version, row.consent_time) {
        (Some(text_version), Some(consent_time)) => Some(Consent {
            text_version: text_version.clone(),
            consent_time,
        }),
        (None, None) => None,
        _ => return Err(ClientsError::Corrupt("consent")),
    };
    Ok(ClientRecord {
        preferences: row.preferences.0.clone(),
        source: Source::parse(&row.source).ok_or(ClientsError::Corrupt("source"))?,
        status: Status::parse(&row.status).ok_or(ClientsError::Corrupt("status"))?,
        consent,
        ..ClientRecord::default()
    })
}

/// An audit or access event about client `client_id` owned by `owner`, by
/// `principal`; the owner is the event's tenant, so "who viewed this client"
/// is answered to the owner and their supervisors.
fn event(
    principal: &Principal,
    action: Action,
    resource_type: &str,
    client_id: Uuid,
    owner: Uuid,
) -> AuditEventBuilder {
    AuditEventBuilder::new(SERVICE, action, resource_type, client_id)
        .actor_user(principal.user_id)
        .tenant(owner)
}
