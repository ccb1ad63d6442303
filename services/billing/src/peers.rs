//! What billing asks other services, over mTLS: clients (may this user bill
//! this client?) and tenancy (the issuer's tax profile and time zone). Each
//! call is bounded by the caller's deadline and at most [`PEER_TIMEOUT`].

use std::time::Duration;

use fitflow_proto::clients::clients_service_client::ClientsServiceClient;
use fitflow_proto::clients::{
    AccessLevel, AccessPurpose, CheckClientAccessRequest, GetContactRequest,
};
use fitflow_proto::tenancy::tenancy_service_client::TenancyServiceClient;
use fitflow_proto::tenancy::{GetTaxProfileRequest, GetTrainerRequest, SupplierStatus};
use fitflow_server::client::{forwarding_request, peer_request};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::BillingError;
use crate::recipient::Recipient;

/// Longest wait for a peer when the caller set no shorter deadline.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

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

/// The peers billing asks.
#[derive(Clone)]
pub struct Peers {
    clients: ClientsServiceClient<Channel>,
    tenancy: TenancyServiceClient<Channel>,
}

fn unavailable(rpc: &str, status: &tonic::Status) -> BillingError {
    BillingError::DependencyUnavailable(format!("{rpc}: {:?}", status.code()))
}

/// `message` for a peer that decides for the user whose `bearer` token
/// this is; a token that is no header value finds no client.
fn with_token<T>(message: T, bearer: &str) -> Result<tonic::Request<T>, BillingError> {
    forwarding_request(message, bearer, PEER_TIMEOUT).map_err(|_| BillingError::ClientNotFound)
}

impl Peers {
    /// Peers over the given channels.
    pub fn new(clients: Channel, tenancy: Channel) -> Self {
        Self {
            clients: ClientsServiceClient::new(clients),
            tenancy: TenancyServiceClient::new(tenancy),
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
                Ok((
                    trainer.time_zone.parse().unwrap_or(chrono_tz::UTC),
                    trainer.business_name,
                ))
            }
            Err(status) if status.code() == tonic::Code::NotFound => {
                Ok((chrono_tz::UTC, String::new()))
            }
            Err(status) => Err(unavailable("GetTrainer", &status)),
        }
    }

    /// The issuer's IANA time zone (tenancy); UTC without a profile or zone.
    pub(crate) async fn zone(
        &self,
        bearer: &str,
        issuer: Uuid,
    ) -> Result<chrono_tz::Tz, BillingError> {
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
            Ok(answer) => Ok(answer
                .trainer
                .and_then(|trainer| trainer.time_zone.parse().ok())
                .unwrap_or(chrono_tz::UTC)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(chrono_tz::UTC),
            Err(status) => Err(unavailable("GetTrainer", &status)),
        }
    }
}
