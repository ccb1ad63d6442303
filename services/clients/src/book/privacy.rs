//! Privacy rights and what other services may learn: a client's export
//! (PIPEDA access, Quebec Law 25 portability), erasure by crypto-shredding,
//! and the contact details an invoice or a reminder needs.

use chrono::{DateTime, Utc};
use fitflow_auth::{Principal, Role};
use fitflow_outbox::{Action, AuditEventBuilder, Purpose};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{ClientBook, commit, event, plain_record, reach, user};
use crate::domain::{self, AccessLevel, Address, ClientRecord};
use crate::repo::{self, HistoryRow};
use crate::seal::TABLE;
use crate::{ClientsError, SERVICE};

/// The name of the export's format, first in every document.
const EXPORT_FORMAT: &str = "fitflow.client-export.v1";

/// A finished export: its access event and the JSON document.
pub(crate) struct Export {
    pub event_id: String,
    pub document: Zeroizing<Vec<u8>>,
}

/// What an invoice or a reminder needs of a client.
pub(crate) struct Contact {
    pub owner: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub address: Option<Address>,
}

#[derive(Serialize)]
struct ExportDocument<'a> {
    format: &'static str,
    exported_at: DateTime<Utc>,
    client: ExportedClient<'a>,
    shares: Vec<ExportedShare>,
    sharing_history: &'a [HistoryRow],
    /// Scheduling's records: individual and trial appointments.
    appointments: Vec<ExportedAppointment>,
    /// Scheduling's records: places in group classes.
    class_participations: Vec<ExportedParticipation>,
    /// Documentation's records: session notes with their amendments, and
    /// every version of every training plan, in the contract's JSON mapping.
    documentation: serde_json::Value,
    /// Billing's records: invoices and credit notes billed to the client
    /// (with their lines and taxes), and their payments and refunds, in the
    /// contract's JSON mapping.
    billing: serde_json::Value,
    /// Which services' records this document holds.
    sections: &'static [&'static str],
}

#[derive(Serialize)]
struct ExportedAppointment {
    id: String,
    trainer_id: String,
    class_type_id: String,
    start_time: Option<String>,
    end_time: Option<String>,
    status: &'static str,
    location_type: &'static str,
    location_details: String,
    client_price: Option<String>,
    cancel_time: Option<String>,
    cancel_reason: String,
    late_cancel: bool,
    penalty_fee: Option<String>,
    fee_waived: bool,
    attended: Option<bool>,
    series_id: String,
}

#[derive(Serialize)]
struct ExportedParticipation {
    appointment_id: String,
    status: &'static str,
    position: i64,
    join_time: Option<String>,
}

fn time_text(value: Option<&prost_types::Timestamp>) -> Option<String> {
    value
        .and_then(fitflow_api::time::parse_timestamp)
        .map(|at| at.to_rfc3339())
}

fn exported_appointments(
    answer: fitflow_proto::scheduling::ExportClientAppointmentsResponse,
) -> (Vec<ExportedAppointment>, Vec<ExportedParticipation>) {
    use fitflow_proto::scheduling as sched;
    let appointments = answer
        .appointments
        .into_iter()
        .map(|a| ExportedAppointment {
            start_time: time_text(a.start_time.as_ref()),
            end_time: time_text(a.end_time.as_ref()),
            status: sched::AppointmentStatus::try_from(a.status)
                .map_or("APPOINTMENT_STATUS_UNSPECIFIED", |status| {
                    status.as_str_name()
                }),
            location_type: sched::LocationType::try_from(a.location_type)
                .map_or("LOCATION_TYPE_UNSPECIFIED", |location| {
                    location.as_str_name()
                }),
            client_price: a.client_price.map(|money| money.amount),
            cancel_time: time_text(a.cancel_time.as_ref()),
            penalty_fee: a.penalty_fee.map(|money| money.amount),
            id: a.id,
            trainer_id: a.trainer_id,
            class_type_id: a.class_type_id,
            location_details: a.location_details,
            cancel_reason: a.cancel_reason,
            late_cancel: a.late_cancel,
            fee_waived: a.fee_waived,
            attended: a.client_attended,
            series_id: a.series_id,
        })
        .collect();
    let participations = answer
        .participations
        .into_iter()
        .map(|p| ExportedParticipation {
            status: sched::ParticipantStatus::try_from(p.status)
                .map_or("PARTICIPANT_STATUS_UNSPECIFIED", |status| {
                    status.as_str_name()
                }),
            join_time: time_text(p.join_time.as_ref()),
            appointment_id: p.appointment_id,
            position: p.position,
        })
        .collect();
    (appointments, participations)
}

#[derive(Serialize)]
struct ExportedClient<'a> {
    id: Uuid,
    owner_trainer_id: Uuid,
    first_name: &'a str,
    last_name: &'a str,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    date_of_birth: Option<chrono::NaiveDate>,
    emergency_contact: Option<&'a domain::EmergencyContact>,
    medical_info: Option<&'a domain::MedicalInfo>,
    goals: Option<&'a str>,
    address: Option<&'a Address>,
    preferences: &'a std::collections::BTreeMap<String, String>,
    source: domain::Source,
    status: domain::Status,
    health_consent: Option<&'a domain::Consent>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct ExportedShare {
    trainer_id: Uuid,
    level: &'static str,
    granted_by: Uuid,
    granted_at: DateTime<Utc>,
}

fn exported_client<'a>(
    id: Uuid,
    owner: Uuid,
    record: &'a ClientRecord,
    row: &repo::ClientRow,
) -> ExportedClient<'a> {
    ExportedClient {
        id,
        owner_trainer_id: owner,
        first_name: &record.first_name,
        last_name: &record.last_name,
        email: record.email.as_deref(),
        phone: record.phone.as_deref(),
        date_of_birth: record.date_of_birth,
        emergency_contact: record.emergency_contact.as_ref(),
        medical_info: record.medical_info.as_ref(),
        goals: record.goals.as_deref(),
        address: record.address.as_ref(),
        preferences: &record.preferences,
        source: record.source,
        status: record.status,
        health_consent: record.consent.as_ref(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        deleted_at: row.deleted_at,
    }
}

impl ClientBook {
    /// The client's whole record as JSON, with an EXPORT access event
    /// committed before any of it is returned.
    pub(crate) async fn export(
        &self,
        principal: &Principal,
        client_id: Uuid,
        purpose: Purpose,
    ) -> Result<Export, ClientsError> {
        let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
        let (row, _) = reach(&mut tx, principal, client_id, AccessLevel::Admin, false).await?;
        let shares = repo::shares(&mut tx, client_id).await?;
        let history = repo::history(&mut tx, client_id).await?;
        // Asked once the caller's access is established and before the
        // access event commits: an export that cannot be whole fails whole.
        let (appointments, class_participations) =
            exported_appointments(self.appointments.of_client(client_id).await?);
        let documentation = self.documentation.of_client(client_id).await?;
        let billing = self.invoices.of_client(client_id).await?;
        let access = event(principal, Action::Export, TABLE, client_id, row.trainer_id)
            .purpose(purpose)
            .build();
        let event_id = access.event_id.clone();
        fitflow_outbox::record(&mut tx, &access).await?;
        let mut record = plain_record(&row)?;
        self.sealer
            .open_into(client_id, &row.sealed(), &mut record)
            .await?;
        commit(tx).await?;
        let mut exported_shares = Vec::with_capacity(shares.len());
        for share in shares {
            exported_shares.push(ExportedShare {
                trainer_id: share.trainer_id,
                level: AccessLevel::parse_share(&share.permission_level)
                    .ok_or(ClientsError::Corrupt("permission_level"))?
                    .as_str(),
                granted_by: share.granted_by,
                granted_at: share.granted_at,
            });
        }
        let document = ExportDocument {
            format: EXPORT_FORMAT,
            exported_at: Utc::now(),
            client: exported_client(client_id, row.trainer_id, &record, &row),
            shares: exported_shares,
            sharing_history: &history,
            appointments,
            class_participations,
            documentation,
            billing,
            sections: &["clients", "scheduling", "documentation", "billing"],
        };
        let bytes = serde_json::to_vec_pretty(&document)
            .map_err(|_| ClientsError::Corrupt("export document"))?;
        Ok(Export {
            event_id,
            document: Zeroizing::new(bytes),
        })
    }

    /// Erases a client deleted longer ago than the retention period: its key
    /// first (after which nothing sealed under it opens, anywhere), then its
    /// row, shares and history.
    pub(crate) async fn purge(
        &self,
        principal: &Principal,
        client_id: Uuid,
    ) -> Result<(), ClientsError> {
        principal.require_role(Role::Operator)?;
        let mut tx = fitflow_db::system_tx(&self.system).await?;
        let (owner, deleted_at) = repo::lock_for_purge(&mut tx, client_id)
            .await?
            .ok_or(ClientsError::ClientNotFound)?;
        domain::purge_allowed(deleted_at, Utc::now(), self.retention)
            .map_err(ClientsError::PurgeRefused)?;
        // Key first: if the rest fails, the client is already unreadable and
        // a retry finishes the job (destroying a missing key is a no-op).
        self.sealer.destroy_key(client_id).await?;
        repo::delete_client(&mut tx, client_id).await?;
        let audit = AuditEventBuilder::new(SERVICE, Action::Delete, TABLE, client_id)
            .actor_user(principal.user_id)
            .tenant(owner)
            .changed_field("purged")
            .build();
        fitflow_outbox::record(&mut tx, &audit).await?;
        commit(tx).await
    }

    /// Name, email and address for `peer`'s invoice or reminder; with a
    /// forwarded user token, that user needs READ access.
    pub(crate) async fn contact(
        &self,
        principal: Option<&Principal>,
        peer: &str,
        client_id: Uuid,
        purpose: Purpose,
    ) -> Result<Contact, ClientsError> {
        let (mut tx, row) = match principal {
            Some(principal) => {
                let mut tx = fitflow_db::tx(&self.pool, &user(principal)).await?;
                let (row, _) =
                    reach(&mut tx, principal, client_id, AccessLevel::Read, false).await?;
                (tx, row)
            }
            None => {
                let mut tx = fitflow_db::system_tx(&self.system).await?;
                let row = repo::client(&mut tx, client_id, Uuid::nil(), false)
                    .await?
                    .ok_or(ClientsError::ClientNotFound)?;
                (tx, row)
            }
        };
        if row.deleted_at.is_some() {
            return Err(ClientsError::ClientNotFound);
        }
        let mut access = AuditEventBuilder::new(SERVICE, Action::Read, "client_contact", client_id)
            .tenant(row.trainer_id)
            .purpose(purpose)
            .change("requested_by", "", peer);
        access = match principal {
            Some(principal) => access.actor_user(principal.user_id),
            // The audit service admits only the sending service as a
            // service actor; `requested_by` names the peer that asked.
            None => access.actor_service(SERVICE),
        };
        fitflow_outbox::record(&mut tx, &access.build()).await?;
        let sealed = row.sealed();
        let (first_name, last_name) = self
            .sealer
            .open_names(client_id, &sealed.first_name, &sealed.last_name)
            .await?;
        let email = self
            .sealer
            .open_optional_text(client_id, "email", sealed.email.as_deref())
            .await?;
        let address = self
            .sealer
            .open_optional_json(client_id, "address", sealed.address.as_deref())
            .await?;
        commit(tx).await?;
        Ok(Contact {
            owner: row.trainer_id,
            first_name,
            last_name,
            email,
            address,
        })
    }
}
