//! What billing asks other services, over mTLS: clients (may this user bill
//! this client?), tenancy (the issuer's tax profile, time zone and province,
//! a studio's province) and scheduling (the billable items of a period).
//! Each call is bounded by the caller's deadline and at most
//! [`PEER_TIMEOUT`].

use std::time::Duration;

use chrono::NaiveDate;
use fitflow_api::canada::Province;
use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::clients::{
    AccessLevel, AccessPurpose, CheckClientAccessRequest, GetContactRequest,
};
use fitflow_proto::google::r#type::Date;
use fitflow_proto::scheduling as scheduling_pb;
use fitflow_proto::scheduling::scheduling_service_client::SchedulingServiceClient;
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::tenancy::{
    GetStudioRequest, GetTaxProfileRequest, GetTrainerRequest, SupplierStatus,
};
use fitflow_server::client::{forwarding_request, peer_request};
use tonic::transport::Channel;
use uuid::Uuid;

mod studios;

use crate::BillingError;
use crate::recipient::Recipient;
use crate::schedule::{Billable, Charge, ItemKey, Settlement};

pub(crate) use studios::StudioCard;

/// Longest wait for a peer when the caller set no shorter deadline.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);
/// Items per page of scheduling's billable items (its largest page).
const BILLABLE_PAGE: i32 = 500;
/// Most pages of billable items read for one draft (20,000 items of a
/// trainer in one period of at most 93 days): a bound, not a limit met.
const MAX_BILLABLE_PAGES: usize = 40;

/// What an invoice prints of its issuer's taxes.
#[derive(Debug, Clone)]
pub(crate) struct TaxStanding {
    /// Registered for GST/HST: charges tax.
    pub registered: bool,
    /// The GST/HST number, when registered.
    pub gst_hst_number: String,
    /// The QST number, when registered in Quebec.
    pub qst_number: String,
}

/// What an invoice needs of its issuer's trainer profile.
struct IssuerCard {
    zone: chrono_tz::Tz,
    province: Option<Province>,
    business_name: String,
}

/// The peers billing asks.
#[derive(Clone)]
pub struct Peers {
    clients: ClientsServiceClient<Channel>,
    tenancy: TenancyServiceClient<Channel>,
    scheduling: SchedulingServiceClient<Channel>,
}

/// DEPENDENCY_UNAVAILABLE for a failed call of `rpc`, logged with the
/// method and the code only (never the peer's message, which may quote
/// the request), so that an operator sees which peer failed.
fn unavailable(rpc: &str, status: &tonic::Status) -> BillingError {
    tracing::warn!(rpc, code = ?status.code(), "a peer call failed");
    BillingError::DependencyUnavailable(format!("{rpc}: {:?}", status.code()))
}

/// `message` for a peer that decides for the user whose `bearer` token
/// this is; a token that is no header value finds no client.
fn with_token<T>(message: T, bearer: &str) -> Result<tonic::Request<T>, BillingError> {
    forwarding_request(message, bearer, PEER_TIMEOUT).map_err(|_| BillingError::ClientNotFound)
}

impl Peers {
    /// Peers over the given channels.
    pub fn new(clients: Channel, tenancy: Channel, scheduling: Channel) -> Self {
        Self {
            clients: ClientsServiceClient::new(clients),
            tenancy: TenancyServiceClient::new(tenancy),
            scheduling: SchedulingServiceClient::new(scheduling),
        }
    }

    /// CLIENT_NOT_FOUND unless the user whose `bearer` token this is may
    /// write `client_id`'s records (billing a client is a write) and the
    /// client is `issuer`'s own: a supervisor or a trainer the client is
    /// shared with never bills someone else's client.
    pub(crate) async fn require_client(
        &self,
        bearer: &str,
        client_id: Uuid,
        issuer: Uuid,
    ) -> Result<(), BillingError> {
        let request = with_token(
            CheckClientAccessRequest {
                client_id: client_id.to_string(),
                level: AccessLevel::Write as i32,
            },
            bearer,
        )?;
        let mut clients = self.clients.clone();
        let answer = clients
            .check_client_access(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| unavailable("CheckClientAccess", &status))?;
        if answer.allowed && Uuid::try_parse(&answer.owner_trainer_id).ok() == Some(issuer) {
            Ok(())
        } else {
            Err(BillingError::ClientNotFound)
        }
    }

    /// The issuer's tax standing; TAX_PROFILE_REQUIRED when they have none.
    pub(crate) async fn tax_standing(&self, issuer: Uuid) -> Result<TaxStanding, BillingError> {
        let request = peer_request(
            GetTaxProfileRequest {
                trainer_id: issuer.to_string(),
            },
            PEER_TIMEOUT,
        );
        let mut tenancy = self.tenancy.clone();
        let answer = match tenancy
            .get_tax_profile(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => answer,
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(BillingError::TaxProfileRequired);
            }
            Err(status) => return Err(unavailable("GetTaxProfile", &status)),
        };
        let profile = answer.tax_profile.ok_or(BillingError::TaxProfileRequired)?;
        let registered = match SupplierStatus::try_from(profile.supplier_status) {
            Ok(SupplierStatus::Registered) => true,
            Ok(SupplierStatus::SmallSupplier) => false,
            _ => return Err(BillingError::TaxProfileRequired),
        };
        Ok(TaxStanding {
            registered,
            gst_hst_number: if registered {
                profile.gst_hst_number
            } else {
                String::new()
            },
            qst_number: if registered {
                profile.qst_number
            } else {
                String::new()
            },
        })
    }

    /// The client's name, email and address for an invoice: clients'
    /// `GetContact` with purpose PAYMENT as the user whose `bearer` token
    /// this is (clients writes the access event); CLIENT_NOT_FOUND when the
    /// client is gone or the user may no longer read them.
    pub(crate) async fn contact(
        &self,
        bearer: &str,
        client_id: Uuid,
    ) -> Result<Recipient, BillingError> {
        let request = with_token(
            GetContactRequest {
                client_id: client_id.to_string(),
                purpose: AccessPurpose::Payment as i32,
            },
            bearer,
        )?;
        let mut clients = self.clients.clone();
        let contact = match clients
            .get_contact(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(contact) => contact,
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(BillingError::ClientNotFound);
            }
            Err(status) => return Err(unavailable("GetContact", &status)),
        };
        let address = contact.address.unwrap_or_default();
        let province = fitflow_api::canada::Province::from_proto(address.province)
            .map(|province| province.code().to_owned())
            .unwrap_or_default();
        Ok(Recipient {
            organisation: String::new(),
            first_name: contact.first_name,
            last_name: contact.last_name,
            email: contact.email,
            street: address.street,
            city: address.city,
            province,
            postal_code: address.postal_code,
        })
    }

    /// The issuer's IANA time zone and business name (tenancy); UTC and no
    /// name without a profile.
    pub(crate) async fn issuer_card(
        &self,
        bearer: &str,
        issuer: Uuid,
    ) -> Result<(chrono_tz::Tz, String), BillingError> {
        let card = self.card(bearer, issuer).await?;
        Ok((card.zone, card.business_name))
    }

    /// The issuer's IANA time zone (tenancy); UTC without a profile or zone.
    pub(crate) async fn zone(
        &self,
        bearer: &str,
        issuer: Uuid,
    ) -> Result<chrono_tz::Tz, BillingError> {
        Ok(self.card(bearer, issuer).await?.zone)
    }

    /// The issuer's province of business (tenancy), the place of supply by
    /// default; PROVINCE_OF_SUPPLY_UNKNOWN without a profile.
    pub(crate) async fn province(
        &self,
        bearer: &str,
        issuer: Uuid,
    ) -> Result<Province, BillingError> {
        self.card(bearer, issuer)
            .await?
            .province
            .ok_or(BillingError::ProvinceOfSupplyUnknown)
    }

    /// The province of `studio_id` (tenancy's directory card, read as the
    /// user whose `bearer` token this is); PROVINCE_OF_SUPPLY_UNKNOWN when
    /// tenancy shows no such studio or no province.
    pub(crate) async fn studio_province(
        &self,
        bearer: &str,
        studio_id: Uuid,
    ) -> Result<Province, BillingError> {
        let request = with_token(
            GetStudioRequest {
                studio_id: studio_id.to_string(),
            },
            bearer,
        )?;
        let mut tenancy = self.tenancy.clone();
        match tenancy
            .get_studio(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => answer
                .studio
                .and_then(|studio| studio.address)
                .and_then(|address| Province::from_proto(address.province))
                .ok_or(BillingError::ProvinceOfSupplyUnknown),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(BillingError::ProvinceOfSupplyUnknown)
            }
            Err(status) => Err(unavailable("GetStudio", &status)),
        }
    }

    /// Every billable item of `trainer`'s appointments dated `first..=last`
    /// (scheduling, read as the user whose `bearer` token this is), in start
    /// order. An item scheduling sends that billing cannot read (an unknown
    /// kind, a malformed id or amount) fails the call rather than being
    /// skipped.
    pub(crate) async fn billable_items(
        &self,
        bearer: &str,
        trainer: Uuid,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Billable>, BillingError> {
        let mut items = Vec::new();
        let mut page_token = String::new();
        for _ in 0..MAX_BILLABLE_PAGES {
            let request = with_token(
                scheduling_pb::ListBillableAppointmentsRequest {
                    trainer_id: trainer.to_string(),
                    start_date: Some(date_out(first)),
                    end_date: Some(date_out(last)),
                    page_size: BILLABLE_PAGE,
                    page_token: std::mem::take(&mut page_token),
                },
                bearer,
            )?;
            let mut scheduling = self.scheduling.clone();
            let page = match scheduling
                .list_billable_appointments(request)
                .await
                .map(tonic::Response::into_inner)
            {
                Ok(page) => page,
                Err(status) if status.code() == tonic::Code::NotFound => {
                    return Err(BillingError::TrainerNotFound);
                }
                Err(status) => return Err(unavailable("ListBillableAppointments", &status)),
            };
            for item in page.items {
                items.push(billable_in(item)?);
            }
            if page.next_page_token.is_empty() {
                return Ok(items);
            }
            page_token = page.next_page_token;
        }
        Err(BillingError::DependencyUnavailable(
            "ListBillableAppointments: too many pages".to_owned(),
        ))
    }

    /// What billing reads of the issuer's trainer profile (tenancy, as the
    /// user whose `bearer` token this is): zone (UTC without a profile or
    /// zone), province of business and business name (none without one).
    async fn card(&self, bearer: &str, issuer: Uuid) -> Result<IssuerCard, BillingError> {
        let request = with_token(
            GetTrainerRequest {
                trainer_id: issuer.to_string(),
            },
            bearer,
        )?;
        let mut tenancy = self.tenancy.clone();
        match tenancy
            .get_trainer(request)
            .await
            .map(tonic::Response::into_inner)
        {
            Ok(answer) => {
                let trainer = answer.trainer.unwrap_or_default();
                Ok(IssuerCard {
                    zone: trainer.time_zone.parse().unwrap_or(chrono_tz::UTC),
                    province: Province::from_proto(trainer.province),
                    business_name: trainer.business_name,
                })
            }
            Err(status) if status.code() == tonic::Code::NotFound => Ok(IssuerCard {
                zone: chrono_tz::UTC,
                province: None,
                business_name: String::new(),
            }),
            Err(status) => Err(unavailable("GetTrainer", &status)),
        }
    }
}

fn date_out(date: NaiveDate) -> Date {
    let civil = fitflow_api::time::to_civil_date(date);
    Date {
        year: civil.year,
        month: civil.month,
        day: civil.day,
    }
}

/// An item as scheduling sent it, decoded; what billing cannot read is
/// scheduling's fault (INTERNAL), never a line billed wrong.
fn billable_in(item: scheduling_pb::BillableItem) -> Result<Billable, BillingError> {
    let corrupt = || BillingError::Corrupt("a billable item from scheduling");
    let charge = match scheduling_pb::BillableKind::try_from(item.kind) {
        Ok(scheduling_pb::BillableKind::Session) => Charge::Session,
        Ok(scheduling_pb::BillableKind::LateCancel) => Charge::LateCancel,
        Ok(scheduling_pb::BillableKind::NoShow) => Charge::NoShow,
        _ => return Err(corrupt()),
    };
    let amount = match item.amount {
        Some(money) => Some(
            fitflow_api::money::cad_amount(&money.currency_code, &money.amount)
                .map_err(|_| corrupt())?,
        ),
        None => None,
    };
    let local_date = item
        .local_date
        .and_then(|date| {
            NaiveDate::from_ymd_opt(
                date.year,
                u32::try_from(date.month).ok()?,
                u32::try_from(date.day).ok()?,
            )
        })
        .ok_or_else(corrupt)?;
    let studio_id = if item.studio_id.is_empty() {
        None
    } else {
        Some(Uuid::try_parse(&item.studio_id).map_err(|_| corrupt())?)
    };
    let settlement = match scheduling_pb::PaymentStatus::try_from(item.payment_status) {
        Ok(scheduling_pb::PaymentStatus::Pending) => Settlement::Pending,
        Ok(scheduling_pb::PaymentStatus::Paid | scheduling_pb::PaymentStatus::Refunded) => {
            Settlement::Settled
        }
        _ => return Err(corrupt()),
    };
    Ok(Billable {
        key: ItemKey {
            appointment_id: Uuid::try_parse(&item.appointment_id).map_err(|_| corrupt())?,
            client_id: Uuid::try_parse(&item.client_id).map_err(|_| corrupt())?,
            charge,
        },
        amount,
        local_date,
        studio_id,
        settlement,
    })
}
