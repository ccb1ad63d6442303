//! `fitflow.clients.v1.ClientsService`: authenticate, validate, call the use
//! case, encode.

use std::pin::Pin;

use fitflow_api::field_mask::fields_to_update;
use fitflow_api::idempotency::record;
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{TextKind, check_text, optional_uuid, uuid};
use fitflow_auth::Caller;
use fitflow_error::Violations;
use fitflow_proto::clients as pb;
use fitflow_proto::clients::clients_service_server::ClientsService;
use futures::Stream;
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::book::{ClientBook, Idempotency, ListQuery};
use crate::domain::{self, FIELDS};
use crate::{ERROR_DOMAIN, convert};

/// Largest page of ListClients.
const MAX_PAGE: u32 = 200;
/// Bytes of the export document per streamed message.
const EXPORT_CHUNK: usize = 16 * 1024;
const LIST_METHOD: &str = "/fitflow.clients.v1.ClientsService/ListClients";
const CREATE_METHOD: &str = "/fitflow.clients.v1.ClientsService/CreateClient";

/// The gRPC face of [`ClientBook`].
pub struct ClientsGrpc {
    book: ClientBook,
}

impl ClientsGrpc {
    /// Serves `book` over gRPC.
    pub fn new(book: ClientBook) -> Self {
        Self { book }
    }
}

fitflow_server::handler_helpers!(ERROR_DOMAIN);

fn etag(violations: &mut Violations, value: &str) {
    check_text(violations, "etag", value, TextKind::Line, 100);
}

/// The stream of export chunks.
type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportClientResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ClientsService for ClientsGrpc {
    async fn create_client(
        &self,
        request: Request<pb::CreateClientRequest>,
    ) -> Result<Response<pb::CreateClientResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = Idempotency(record(
            &mut violations,
            &Caller::User(principal.clone()),
            CREATE_METHOD,
            &request,
            |request| &mut request.request_id,
        ));
        let client = request.client.unwrap_or_default();
        let owner = optional_uuid(
            &mut violations,
            "client.owner_trainer_id",
            &client.owner_trainer_id,
        );
        let record = convert::record_in(&mut violations, &client, None);
        done(violations)?;
        let view = self
            .book
            .create(&principal, owner, record, idempotency)
            .await?;
        Ok(Response::new(pb::CreateClientResponse {
            client: Some(convert::client_out(view)),
        }))
    }

    async fn get_client(
        &self,
        request: Request<pb::GetClientRequest>,
    ) -> Result<Response<pb::GetClientResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let purpose = convert::purpose(&mut violations, "purpose", request.purpose);
        done(violations)?;
        let view = self
            .book
            .get(
                &principal,
                client_id.unwrap_or_default(),
                purpose,
                request.show_deleted,
            )
            .await?;
        Ok(Response::new(pb::GetClientResponse {
            client: Some(convert::client_out(view)),
        }))
    }

    async fn update_client(
        &self,
        request: Request<pb::UpdateClientRequest>,
    ) -> Result<Response<pb::UpdateClientResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let client = request.client.unwrap_or_default();
        let client_id = uuid(&mut violations, "client.id", &client.id);
        etag(&mut violations, &request.etag);
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            violations.add("update_mask", "is required: name the fields to change");
        }
        let fields: Vec<&'static str> = fields_to_update(&mut violations, &paths, &FIELDS, &[])
            .iter()
            .collect();
        let patch = convert::record_in(&mut violations, &client, Some(&fields));
        done(violations)?;
        let view = self
            .book
            .update(
                &principal,
                client_id.unwrap_or_default(),
                &request.etag,
                &fields,
                &patch,
            )
            .await?;
        Ok(Response::new(pb::UpdateClientResponse {
            client: Some(convert::client_out(view)),
        }))
    }

    async fn list_clients(
        &self,
        request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(&mut violations, request.page_size, MAX_PAGE);
        check_text(
            &mut violations,
            "email",
            &request.email,
            TextKind::Line,
            254,
        );
        check_text(&mut violations, "phone", &request.phone, TextKind::Line, 30);
        check_text(
            &mut violations,
            "name_prefix",
            &request.name_prefix,
            TextKind::Line,
            100,
        );
        let owner = optional_uuid(
            &mut violations,
            "owner_trainer_id",
            &request.owner_trainer_id,
        );
        let finders = [&request.email, &request.phone, &request.name_prefix]
            .iter()
            .filter(|value| !value.trim().is_empty())
            .count();
        if finders > 1 {
            violations.add("email", "set at most one of email, phone and name_prefix");
        }
        let query = if !request.email.trim().is_empty() {
            ListQuery::Email(request.email.clone())
        } else if !request.phone.trim().is_empty() {
            if domain::normalized_phone(&request.phone).is_empty() {
                violations.add("phone", "must hold digits");
            }
            ListQuery::Phone(request.phone.clone())
        } else if !request.name_prefix.trim().is_empty() {
            match domain::search_prefix(&request.name_prefix) {
                Some(indexed) => ListQuery::NamePrefix {
                    indexed,
                    typed: request.name_prefix.clone(),
                },
                None => {
                    violations.add("name_prefix", "must hold at least 3 letters");
                    ListQuery::All
                }
            }
        } else {
            ListQuery::All
        };
        let filter = pb::ListClientsRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let caller = Caller::User(principal.clone());
        let page_query = PageQuery {
            method: LIST_METHOD,
            caller: &caller,
            filter: &filter,
        };
        let cursor: Option<TimeIdCursor> =
            self.book
                .page_tokens()
                .read(&mut violations, &page_query, &request.page_token);
        done(violations)?;
        let (clients, next) = self
            .book
            .list(
                &principal,
                &query,
                owner,
                request.show_deleted,
                cursor.map(|cursor| (cursor.at, cursor.id)),
                size,
            )
            .await?;
        let next_page_token = next
            .map(|(at, id)| {
                self.book
                    .page_tokens()
                    .issue(&page_query, &TimeIdCursor { at, id })
            })
            .unwrap_or_default();
        Ok(Response::new(pb::ListClientsResponse {
            clients: clients.into_iter().map(convert::summary_out).collect(),
            next_page_token,
        }))
    }

    async fn delete_client(
        &self,
        request: Request<pb::DeleteClientRequest>,
    ) -> Result<Response<pb::DeleteClientResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        etag(&mut violations, &request.etag);
        done(violations)?;
        let summary = self
            .book
            .set_deleted(
                &principal,
                client_id.unwrap_or_default(),
                true,
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::DeleteClientResponse {
            client: Some(convert::summary_out(summary)),
        }))
    }

    async fn undelete_client(
        &self,
        request: Request<pb::UndeleteClientRequest>,
    ) -> Result<Response<pb::UndeleteClientResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        let summary = self
            .book
            .set_deleted(&principal, client_id.unwrap_or_default(), false, "")
            .await?;
        Ok(Response::new(pb::UndeleteClientResponse {
            client: Some(convert::summary_out(summary)),
        }))
    }

    async fn share_client(
        &self,
        request: Request<pb::ShareClientRequest>,
    ) -> Result<Response<pb::ShareClientResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let grantee =
            convert::grantee(&mut violations, &request.trainer_id, &request.trainer_email);
        let level = convert::share_level(&mut violations, "level", request.level);
        done(violations)?;
        let client_id = client_id.unwrap_or_default();
        let share = match grantee {
            convert::Grantee::Email(email) => {
                self.book
                    .share_by_email(&principal, client_id, &email, level)
                    .await?
            }
            convert::Grantee::Id(trainer_id) => {
                self.book
                    .share(&principal, client_id, trainer_id, level)
                    .await?
            }
        };
        Ok(Response::new(pb::ShareClientResponse {
            share: Some(convert::share_out(share)),
        }))
    }

    async fn revoke_client_share(
        &self,
        request: Request<pb::RevokeClientShareRequest>,
    ) -> Result<Response<pb::RevokeClientShareResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let trainer_id = uuid(&mut violations, "trainer_id", &request.trainer_id);
        done(violations)?;
        self.book
            .revoke(
                &principal,
                client_id.unwrap_or_default(),
                trainer_id.unwrap_or_default(),
            )
            .await?;
        Ok(Response::new(pb::RevokeClientShareResponse {}))
    }

    async fn list_client_shares(
        &self,
        request: Request<pb::ListClientSharesRequest>,
    ) -> Result<Response<pb::ListClientSharesResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        let shares = self
            .book
            .shares(&principal, client_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListClientSharesResponse {
            shares: shares.into_iter().map(convert::share_out).collect(),
        }))
    }

    async fn transfer_client(
        &self,
        request: Request<pb::TransferClientRequest>,
    ) -> Result<Response<pb::TransferClientResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let new_owner = uuid(
            &mut violations,
            "new_owner_trainer_id",
            &request.new_owner_trainer_id,
        );
        etag(&mut violations, &request.etag);
        done(violations)?;
        let summary = self
            .book
            .transfer(
                &principal,
                client_id.unwrap_or_default(),
                new_owner.unwrap_or_default(),
                &request.etag,
            )
            .await?;
        Ok(Response::new(pb::TransferClientResponse {
            client: Some(convert::summary_out(summary)),
        }))
    }

    type ExportClientStream = ExportStream;

    async fn export_client(
        &self,
        request: Request<pb::ExportClientRequest>,
    ) -> Result<Response<Self::ExportClientStream>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let purpose = convert::purpose(&mut violations, "purpose", request.purpose);
        done(violations)?;
        let export = self
            .book
            .export(&principal, client_id.unwrap_or_default(), purpose)
            .await?;
        let chunks: Vec<Result<pb::ExportClientResponse, Status>> = export
            .document
            .chunks(EXPORT_CHUNK)
            .enumerate()
            .map(|(index, chunk)| {
                Ok(pb::ExportClientResponse {
                    data: chunk.to_vec(),
                    export_event_id: if index == 0 {
                        export.event_id.clone()
                    } else {
                        String::new()
                    },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn purge_client(
        &self,
        request: Request<pb::PurgeClientRequest>,
    ) -> Result<Response<pb::PurgeClientResponse>, Status> {
        let principal = principal(&request)?;
        principal
            .require_role(fitflow_auth::Role::Operator)
            .map_err(reject)?;
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.get_ref().client_id);
        done(violations)?;
        self.book
            .purge(&principal, client_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::PurgeClientResponse {}))
    }

    async fn check_client_access(
        &self,
        request: Request<pb::CheckClientAccessRequest>,
    ) -> Result<Response<pb::CheckClientAccessResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let needed = convert::needed_level(&mut violations, "level", request.level);
        done(violations)?;
        let answer = self
            .book
            .check_access(&principal, client_id.unwrap_or_default(), needed)
            .await?;
        Ok(Response::new(pb::CheckClientAccessResponse {
            allowed: answer.allowed,
            granted_level: convert::level_out(answer.level),
            owner_trainer_id: answer
                .owner
                .map(|owner| owner.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn get_contact(
        &self,
        request: Request<pb::GetContactRequest>,
    ) -> Result<Response<pb::GetContactResponse>, Status> {
        // A forwarded user token is optional here: a reminder job has none.
        let principal = fitflow_auth::principal(&request).ok().cloned();
        let peer = fitflow_auth::peer(&request)
            .map(|peer| peer.0.clone())
            .unwrap_or_default();
        let request = request.get_ref();
        let mut violations = Violations::new();
        let client_id = uuid(&mut violations, "client_id", &request.client_id);
        let purpose = convert::contact_purpose(&mut violations, "purpose", request.purpose);
        done(violations)?;
        let contact = self
            .book
            .contact(
                principal.as_ref(),
                &peer,
                client_id.unwrap_or_default(),
                purpose,
            )
            .await?;
        Ok(Response::new(convert::contact_out(contact)))
    }

    async fn list_roster_names(
        &self,
        request: Request<pb::ListRosterNamesRequest>,
    ) -> Result<Response<pb::ListRosterNamesResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
        let client_ids = convert::roster_ids(&mut violations, &request.client_ids);
        done(violations)?;
        let names = self
            .book
            .roster_names(&principal, studio_id.unwrap_or_default(), &client_ids)
            .await?;
        Ok(Response::new(pb::ListRosterNamesResponse {
            names: names
                .into_iter()
                .map(|name| pb::RosterName {
                    client_id: name.client_id.to_string(),
                    first_name: name.first_name,
                    last_name: name.last_name,
                })
                .collect(),
        }))
    }
}
