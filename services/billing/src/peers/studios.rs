//! What billing asks about studios for studio invoices: the studio's card
//! (tenancy `GetStudio`, as the user), the sessions the trainer held there
//! (scheduling `ListStudioSessions`, as the user) and the contract's rate on
//! each session's date (tenancy `GetRate`, billing's own peer call).

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use fitflow_proto::scheduling as scheduling_pb;
use fitflow_proto::tenancy::{self as tenancy_pb, GetRateRequest, GetStudioRequest};
use fitflow_server::client::peer_request;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    BILLABLE_PAGE, MAX_BILLABLE_PAGES, PEER_TIMEOUT, Peers, date_out, unavailable, with_token,
};
use crate::BillingError;
use crate::recipient::Recipient;
use crate::studio_invoices::{Category, StudioSession};

/// What a studio invoice needs of its studio.
#[derive(Debug, Clone)]
pub(crate) struct StudioCard {
    /// The province of supply of its sessions, when tenancy shows one.
    pub province: Option<Province>,
    /// Its name, as the lines of a consolidated invoice name the location.
    pub name: String,
    /// Where its invoices go: itself, or its chain's headquarters when
    /// billing is consolidated there.
    pub billing_studio_id: Uuid,
    /// Whom its invoices are addressed to: name, email and postal address.
    pub recipient: Recipient,
}

impl Peers {
    /// The studio's card (tenancy's directory card, read as the user whose
    /// `bearer` token this is); STUDIO_NOT_FOUND when tenancy shows none.
    pub(crate) async fn studio_card(
        &self,
        bearer: &str,
        studio_id: Uuid,
    ) -> Result<StudioCard, BillingError> {
        let request = with_token(
            GetStudioRequest {
                studio_id: studio_id.to_string(),
            },
            bearer,
        )
        .map_err(|_| BillingError::StudioNotFound)?;
        let mut tenancy = self.tenancy.clone();
        let studio = match tenancy
            .get_studio(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => answer.studio.ok_or(BillingError::StudioNotFound)?,
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(BillingError::StudioNotFound);
            }
            Err(status) => return Err(unavailable("GetStudio", &status)),
        };
        let address = studio.address.unwrap_or_default();
        let province = Province::from_proto(address.province);
        // Tenancy shows billing where the invoices go; empty means itself.
        let billing_studio_id = if studio.billing_studio_id.is_empty() {
            studio_id
        } else {
            Uuid::try_parse(&studio.billing_studio_id)
                .map_err(|_| BillingError::Corrupt("a billing studio from tenancy"))?
        };
        Ok(StudioCard {
            province,
            name: studio.name.clone(),
            billing_studio_id,
            recipient: Recipient {
                organisation: studio.name,
                email: studio
                    .contact
                    .map(|contact| contact.email)
                    .unwrap_or_default(),
                street: address.street,
                city: address.city,
                province: province
                    .map(|province| province.code().to_owned())
                    .unwrap_or_default(),
                postal_code: address.postal_code,
                ..Recipient::default()
            },
        })
    }

    /// Every session `trainer` held at any studio dated `first..=last` in
    /// its studio's zone (scheduling, read as the user whose `bearer` token
    /// this is), in start order. A session billing cannot read fails the
    /// call rather than being skipped.
    pub(crate) async fn studio_sessions(
        &self,
        bearer: &str,
        trainer: Uuid,
        (first, last): (NaiveDate, NaiveDate),
    ) -> Result<Vec<StudioSession>, BillingError> {
        let mut sessions = Vec::new();
        let mut page_token = String::new();
        for _ in 0..MAX_BILLABLE_PAGES {
            let request = with_token(
                scheduling_pb::ListStudioSessionsRequest {
                    trainer_id: trainer.to_string(),
                    start_date: Some(date_out(first)),
                    end_date: Some(date_out(last)),
                    studio_ids: Vec::new(),
                    page_size: BILLABLE_PAGE,
                    page_token: std::mem::take(&mut page_token),
                },
                bearer,
            )?;
            let mut scheduling = self.scheduling.clone();
            let page = match scheduling
                .list_studio_sessions(request)
                .await
                .map(tonic::Response::into_inner)
            {
                Ok(page) => page,
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(BillingError::TrainerNotFound);
                }
                Err(status) => return Err(unavailable("ListStudioSessions", &status)),
            };
            for session in page.sessions {
                sessions.push(session_in(session)?);
            }
            if page.next_page_token.is_empty() {
                return Ok(sessions);
            }
            page_token = page.next_page_token;
        }
        Err(BillingError::DependencyUnavailable(
            "ListStudioSessions: too many pages".to_owned(),
        ))
    }

    /// What `studio` pays `trainer` for one class of `category` on `date`
    /// (tenancy's `GetRate`, as billing itself); `None` when no contract
    /// covers that date.
    pub(crate) async fn rate(
        &self,
        trainer: Uuid,
        studio: Uuid,
        category: Category,
        date: NaiveDate,
    ) -> Result<Option<Decimal>, BillingError> {
        let request = peer_request(
            GetRateRequest {
                trainer_id: trainer.to_string(),
                studio_id: studio.to_string(),
                category: match category {
                    Category::Group => tenancy_pb::ClassCategory::Group,
                    Category::Individual => tenancy_pb::ClassCategory::Individual,
                    Category::Trial => tenancy_pb::ClassCategory::Trial,
                } as i32,
                date: Some(date_out(date)),
            },
            PEER_TIMEOUT,
        );
        let mut tenancy = self.tenancy.clone();
        match tenancy
            .get_rate(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => {
                let rate = answer
                    .rate
                    .ok_or(BillingError::Corrupt("a rate from tenancy"))?;
                fitflow_api::money::cad_amount(&rate.currency_code, &rate.amount)
                    .map(Some)
                    .map_err(|_| BillingError::Corrupt("a rate from tenancy"))
            }
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(unavailable("GetRate", &status)),
        }
    }
}

/// A session as scheduling sends it, decoded.
fn session_in(session: scheduling_pb::StudioSession) -> Result<StudioSession, BillingError> {
    let corrupt = || BillingError::Corrupt("a studio session from scheduling");
    let category = match scheduling_pb::ClassCategory::try_from(session.category) {
        Ok(scheduling_pb::ClassCategory::Group) => Category::Group,
        Ok(scheduling_pb::ClassCategory::Individual) => Category::Individual,
        Ok(scheduling_pb::ClassCategory::Trial) => Category::Trial,
        _ => return Err(corrupt()),
    };
    let local_date = session
        .local_date
        .and_then(|date| {
            NaiveDate::from_ymd_opt(
                date.year,
                u32::try_from(date.month).ok()?,
                u32::try_from(date.day).ok()?,
            )
        })
        .ok_or_else(corrupt)?;
    Ok(StudioSession {
        appointment_id: Uuid::try_parse(&session.appointment_id).map_err(|_| corrupt())?,
        studio_id: Uuid::try_parse(&session.studio_id).map_err(|_| corrupt())?,
        class_name: session.class_type_name,
        category,
        local_date,
        clients_present: session.clients_present.max(0),
    })
}
