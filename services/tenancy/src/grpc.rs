//! `fitflow.tenancy.v1.TenancyService`: authenticate, validate, call the use
//! case, encode.

use fitflow_api::idempotency::record;
use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::{TextKind, check_text, uuid};
use fitflow_auth::{Caller, Principal};
use fitflow_error::{ApiError, Violations};
use fitflow_proto::tenancy as pb;
use fitflow_proto::tenancy::tenancy_service_server::TenancyService;
use prost::Message as _;
use tonic::{Request, Response, Status};

use crate::ERROR_DOMAIN;
use crate::convert;
use crate::directory::{Directory, Idempotency, NewContract, TrainerRef};
use crate::domain;
use crate::formats::Province;
use crate::repo::{Party, StudioFilter};

/// Largest page of a List method.
const MAX_PAGE: u32 = 200;
/// The peer that reads tax profiles and rates without a user token.
const BILLING_PEER: &str = "billing";

/// The gRPC face of [`Directory`].
pub struct TenancyGrpc {
    directory: Directory,
}

impl TenancyGrpc {
    /// Serves `directory` over gRPC.
    pub fn new(directory: Directory) -> Self {
        Self { directory }
    }
}

fitflow_server::handler_helpers!(ERROR_DOMAIN);

/// The idempotency record of a create carrying `request_id`, bound to the
/// caller, the method and the whole request.
fn idempotency<M: prost::Message + Clone>(
    violations: &mut Violations,
    principal: &Principal,
    method: &'static str,
    request: &M,
    request_id_field: fn(&mut M) -> &mut String,
) -> Idempotency {
    let caller = Caller::User(principal.clone());
    Idempotency(record(
        violations,
        &caller,
        method,
        request,
        request_id_field,
    ))
}

fn cursor_of(next: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>) -> Option<TimeIdCursor> {
    next.map(|(at, id)| TimeIdCursor { at, id })
}

#[tonic::async_trait]
impl TenancyService for TenancyGrpc {
    async fn create_trainer(
        &self,
        request: Request<pb::CreateTrainerRequest>,
    ) -> Result<Response<pb::CreateTrainerResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.tenancy.v1.TenancyService/CreateTrainer",
            &request,
            |request| &mut request.request_id,
        );
        let new = convert::new_trainer(&mut violations, request.trainer.as_ref());
        done(violations)?;
        let Some((profile, bank)) = new else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let view = self
            .directory
            .create_trainer(&principal, profile, bank, idempotency)
            .await?;
        Ok(Response::new(pb::CreateTrainerResponse {
            trainer: Some(convert::trainer_out(view)),
        }))
    }

    async fn get_trainer(
        &self,
        request: Request<pb::GetTrainerRequest>,
    ) -> Result<Response<pb::GetTrainerResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer_id = uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let view = self
            .directory
            .trainer(&principal, trainer_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetTrainerResponse {
            trainer: Some(convert::trainer_out(view)),
        }))
    }

    async fn update_trainer(
        &self,
        request: Request<pb::UpdateTrainerRequest>,
    ) -> Result<Response<pb::UpdateTrainerResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trainer = request.trainer.unwrap_or_default();
        let trainer_id = uuid(&mut violations, "trainer.id", &trainer.id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let patch = convert::trainer_update(&mut violations, &trainer, &paths);
        done(violations)?;
        let view = self
            .directory
            .update_trainer(
                &principal,
                trainer_id.unwrap_or_default(),
                &request.etag,
                patch,
            )
            .await?;
        Ok(Response::new(pb::UpdateTrainerResponse {
            trainer: Some(convert::trainer_out(view)),
        }))
    }

    async fn get_trainer_bank_account(
        &self,
        request: Request<pb::GetTrainerBankAccountRequest>,
    ) -> Result<Response<pb::GetTrainerBankAccountResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer_id = uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let account = self
            .directory
            .trainer_bank_account(&principal, trainer_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetTrainerBankAccountResponse {
            bank_account: account.as_ref().map(convert::bank_account_out),
        }))
    }

    async fn get_tax_profile(
        &self,
        request: Request<pb::GetTaxProfileRequest>,
    ) -> Result<Response<pb::GetTaxProfileResponse>, Status> {
        let mut violations = Violations::new();
        let trainer_id = uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let view = self
            .directory
            .tax_profile(trainer_id.unwrap_or_default())
            .await?;
        Ok(Response::new(convert::tax_profile_response(view)))
    }

    async fn get_acting_for(
        &self,
        request: Request<pb::GetActingForRequest>,
    ) -> Result<Response<pb::GetActingForResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let user_id = uuid(&mut violations, "user_id", &request.user_id);
        violations.check(
            (0..=fitflow_auth::MAX_ACTING_FOR_IDS).contains(&request.limit),
            "limit",
            "must be 0 (the default, 256) to 10000",
        );
        done(violations)?;
        let limit = match usize::try_from(request.limit) {
            Ok(0) | Err(_) => 256,
            Ok(limit) => limit,
        };
        let (trainers, studios, truncated) = self
            .directory
            .acting_for(user_id.unwrap_or_default(), limit)
            .await?;
        Ok(Response::new(pb::GetActingForResponse {
            trainer_ids: trainers.iter().map(ToString::to_string).collect(),
            studio_ids: studios.iter().map(ToString::to_string).collect(),
            truncated,
        }))
    }

    async fn create_studio(
        &self,
        request: Request<pb::CreateStudioRequest>,
    ) -> Result<Response<pb::CreateStudioResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.tenancy.v1.TenancyService/CreateStudio",
            &request,
            |request| &mut request.request_id,
        );
        let new = convert::new_studio(&mut violations, request.studio.as_ref());
        done(violations)?;
        let Some((profile, bank)) = new else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let view = self
            .directory
            .create_studio(&principal, profile, bank, idempotency)
            .await?;
        Ok(Response::new(pb::CreateStudioResponse {
            studio: Some(convert::studio_out(view)),
        }))
    }

    async fn get_studio(
        &self,
        request: Request<pb::GetStudioRequest>,
    ) -> Result<Response<pb::GetStudioResponse>, Status> {
        let principal = principal(&request)?;
        // Billing addresses a trainer's studio invoices where the studio's
        // go (its `billing_studio_id`), which others than managers see only
        // through billing.
        let for_billing = fitflow_auth::peer(&request).is_some_and(|peer| peer.0 == BILLING_PEER);
        let mut violations = Violations::new();
        let studio_id = uuid(&mut violations, "studio_id", &request.get_ref().studio_id);
        done(violations)?;
        let view = self
            .directory
            .studio(&principal, studio_id.unwrap_or_default(), for_billing)
            .await?;
        Ok(Response::new(pb::GetStudioResponse {
            studio: Some(convert::studio_out(view)),
        }))
    }

    async fn list_studios(
        &self,
        request: Request<pb::ListStudiosRequest>,
    ) -> Result<Response<pb::ListStudiosResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        check_text(
            &mut violations,
            "query",
            &request.query,
            TextKind::Line,
            100,
        );
        let province = match request.province {
            0 => None,
            value => {
                let province = Province::from_proto(value);
                violations.check(province.is_some(), "province", "is not a known province");
                province
            }
        };
        let parent = fitflow_api::text::optional_uuid(
            &mut violations,
            "parent_studio_id",
            &request.parent_studio_id,
        );
        let size = page_size(&mut violations, request.page_size, MAX_PAGE);
        let binding = pb::ListStudiosRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let caller = Caller::User(principal.clone());
        let query = PageQuery {
            method: "/fitflow.tenancy.v1.TenancyService/ListStudios",
            caller: &caller,
            filter: &binding,
        };
        let after: Option<TimeIdCursor> =
            self.directory
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let filter = StudioFilter {
            tsquery: domain::search::studio_query(&request.query),
            province: province.map(Province::code),
            parent_studio_id: parent,
            managed_only: request.managed_only,
            show_deleted: request.show_deleted,
        };
        let page = self
            .directory
            .list_studios(
                &principal,
                &filter,
                after.map(|cursor| (cursor.at, cursor.id)),
                usize::try_from(size).unwrap_or(50),
            )
            .await?;
        let next_page_token = cursor_of(page.next)
            .map(|cursor| self.directory.page_tokens().issue(&query, &cursor))
            .unwrap_or_default();
        Ok(Response::new(pb::ListStudiosResponse {
            studios: page.studios.into_iter().map(convert::studio_out).collect(),
            next_page_token,
        }))
    }

    async fn update_studio(
        &self,
        request: Request<pb::UpdateStudioRequest>,
    ) -> Result<Response<pb::UpdateStudioResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let studio = request.studio.unwrap_or_default();
        let studio_id = uuid(&mut violations, "studio.id", &studio.id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let patch = convert::studio_update(&mut violations, &studio, &paths);
        done(violations)?;
        let view = self
            .directory
            .update_studio(
                &principal,
                studio_id.unwrap_or_default(),
                &request.etag,
                patch,
            )
            .await?;
        Ok(Response::new(pb::UpdateStudioResponse {
            studio: Some(convert::studio_out(view)),
        }))
    }

    async fn delete_studio(
        &self,
        request: Request<pb::DeleteStudioRequest>,
    ) -> Result<Response<pb::DeleteStudioResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        done(violations)?;
        let view = self
            .directory
            .set_studio_deleted(
                &principal,
                studio_id.unwrap_or_default(),
                &request.etag,
                true,
            )
            .await?;
        Ok(Response::new(pb::DeleteStudioResponse {
            studio: Some(convert::studio_out(view)),
        }))
    }

    async fn undelete_studio(
        &self,
        request: Request<pb::UndeleteStudioRequest>,
    ) -> Result<Response<pb::UndeleteStudioResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let studio_id = uuid(&mut violations, "studio_id", &request.get_ref().studio_id);
        done(violations)?;
        let view = self
            .directory
            .set_studio_deleted(&principal, studio_id.unwrap_or_default(), "", false)
            .await?;
        Ok(Response::new(pb::UndeleteStudioResponse {
            studio: Some(convert::studio_out(view)),
        }))
    }

    async fn get_studio_bank_account(
        &self,
        request: Request<pb::GetStudioBankAccountRequest>,
    ) -> Result<Response<pb::GetStudioBankAccountResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let studio_id = uuid(&mut violations, "studio_id", &request.get_ref().studio_id);
        done(violations)?;
        let account = self
            .directory
            .studio_bank_account(&principal, studio_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetStudioBankAccountResponse {
            bank_account: account.as_ref().map(convert::bank_account_out),
        }))
    }

    async fn create_contract(
        &self,
        request: Request<pb::CreateContractRequest>,
    ) -> Result<Response<pb::CreateContractResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.tenancy.v1.TenancyService/CreateContract",
            &request,
            |request| &mut request.request_id,
        );
        let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
        let trainer = match &request.trainer {
            Some(pb::create_contract_request::Trainer::TrainerId(id)) => {
                trainer_ref(&mut violations, Some(id), None)
            }
            Some(pb::create_contract_request::Trainer::TrainerEmail(email)) => {
                trainer_ref(&mut violations, None, Some(email))
            }
            None => trainer_ref(&mut violations, None, None),
        };
        let role = convert::contract_role(&mut violations, request.role);
        let start_date = convert::date(
            &mut violations,
            "start_date",
            request.start_date.as_ref(),
            true,
        );
        let rates = convert::rates(&mut violations, "rates", request.rates.as_ref());
        done(violations)?;
        let (Some(studio_id), Some(trainer), Some(start_date)) = (studio_id, trainer, start_date)
        else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let view = self
            .directory
            .create_contract(
                &principal,
                NewContract {
                    studio_id,
                    trainer,
                    role,
                    start_date,
                    rates,
                },
                idempotency,
            )
            .await?;
        Ok(Response::new(pb::CreateContractResponse {
            contract: Some(convert::contract_out(view)),
        }))
    }

    async fn get_contract(
        &self,
        request: Request<pb::GetContractRequest>,
    ) -> Result<Response<pb::GetContractResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let contract_id = uuid(
            &mut violations,
            "contract_id",
            &request.get_ref().contract_id,
        );
        done(violations)?;
        let view = self
            .directory
            .contract(&principal, contract_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::GetContractResponse {
            contract: Some(convert::contract_out(view)),
        }))
    }

    async fn list_contracts(
        &self,
        request: Request<pb::ListContractsRequest>,
    ) -> Result<Response<pb::ListContractsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let party = match &request.party {
            Some(pb::list_contracts_request::Party::TrainerId(id)) => {
                uuid(&mut violations, "trainer_id", id).map(Party::Trainer)
            }
            Some(pb::list_contracts_request::Party::StudioId(id)) => {
                uuid(&mut violations, "studio_id", id).map(Party::Studio)
            }
            None => {
                violations.add("trainer_id", "is required (or studio_id)");
                None
            }
        };
        let state = convert::contract_state_filter(&mut violations, request.state);
        let size = page_size(&mut violations, request.page_size, MAX_PAGE);
        let binding = pb::ListContractsRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let caller = Caller::User(principal.clone());
        let query = PageQuery {
            method: "/fitflow.tenancy.v1.TenancyService/ListContracts",
            caller: &caller,
            filter: &binding,
        };
        let after: Option<TimeIdCursor> =
            self.directory
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let Some(party) = party else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let page = self
            .directory
            .list_contracts(
                &principal,
                party,
                state,
                after.map(|cursor| (cursor.at, cursor.id)),
                usize::try_from(size).unwrap_or(50),
            )
            .await?;
        let next_page_token = cursor_of(page.next)
            .map(|cursor| self.directory.page_tokens().issue(&query, &cursor))
            .unwrap_or_default();
        Ok(Response::new(pb::ListContractsResponse {
            contracts: page
                .contracts
                .into_iter()
                .map(convert::contract_out)
                .collect(),
            next_page_token,
        }))
    }

    async fn accept_contract(
        &self,
        request: Request<pb::AcceptContractRequest>,
    ) -> Result<Response<pb::AcceptContractResponse>, Status> {
        let principal = principal(&request)?;
        let (contract_id, etag) =
            contract_and_etag(&request.get_ref().contract_id, &request.get_ref().etag)?;
        let view = self
            .directory
            .answer_contract(&principal, contract_id, &etag, true)
            .await?;
        Ok(Response::new(pb::AcceptContractResponse {
            contract: Some(convert::contract_out(view)),
        }))
    }

    async fn decline_contract(
        &self,
        request: Request<pb::DeclineContractRequest>,
    ) -> Result<Response<pb::DeclineContractResponse>, Status> {
        let principal = principal(&request)?;
        let (contract_id, etag) =
            contract_and_etag(&request.get_ref().contract_id, &request.get_ref().etag)?;
        let view = self
            .directory
            .answer_contract(&principal, contract_id, &etag, false)
            .await?;
        Ok(Response::new(pb::DeclineContractResponse {
            contract: Some(convert::contract_out(view)),
        }))
    }

    async fn end_contract(
        &self,
        request: Request<pb::EndContractRequest>,
    ) -> Result<Response<pb::EndContractResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let contract_id = uuid(&mut violations, "contract_id", &request.contract_id);
        check_text(&mut violations, "etag", &request.etag, TextKind::Line, 100);
        let end_date = convert::date(
            &mut violations,
            "end_date",
            request.end_date.as_ref(),
            false,
        );
        done(violations)?;
        let view = self
            .directory
            .end_contract(
                &principal,
                contract_id.unwrap_or_default(),
                &request.etag,
                end_date,
            )
            .await?;
        Ok(Response::new(pb::EndContractResponse {
            contract: Some(convert::contract_out(view)),
        }))
    }

    async fn add_rate_version(
        &self,
        request: Request<pb::AddRateVersionRequest>,
    ) -> Result<Response<pb::AddRateVersionResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let contract_id = uuid(&mut violations, "contract_id", &request.contract_id);
        let effective = convert::date(
            &mut violations,
            "rates.effective_date",
            request
                .rates
                .as_ref()
                .and_then(|rates| rates.effective_date.as_ref()),
            true,
        );
        let rates = convert::rates(&mut violations, "rates", request.rates.as_ref());
        done(violations)?;
        let (Some(contract_id), Some(effective)) = (contract_id, effective) else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let (view, version) = self
            .directory
            .add_rate_version(&principal, contract_id, effective, rates)
            .await?;
        Ok(Response::new(pb::AddRateVersionResponse {
            contract: Some(convert::contract_out(view)),
            version: Some(convert::rate_version_out(&version)),
        }))
    }

    async fn list_rate_versions(
        &self,
        request: Request<pb::ListRateVersionsRequest>,
    ) -> Result<Response<pb::ListRateVersionsResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let contract_id = uuid(
            &mut violations,
            "contract_id",
            &request.get_ref().contract_id,
        );
        done(violations)?;
        let versions = self
            .directory
            .rate_versions(&principal, contract_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListRateVersionsResponse {
            versions: versions.iter().map(convert::rate_version_out).collect(),
        }))
    }

    async fn get_rate(
        &self,
        request: Request<pb::GetRateRequest>,
    ) -> Result<Response<pb::GetRateResponse>, Status> {
        // Billing asks with no user token; everyone else as a party.
        let from_billing = fitflow_auth::peer(&request).is_some_and(|peer| peer.0 == BILLING_PEER);
        let caller = if from_billing {
            Caller::Service(crate::SERVICE)
        } else {
            Caller::User(principal(&request)?)
        };
        let request = request.into_inner();
        let mut violations = Violations::new();
        let trainer_id = uuid(&mut violations, "trainer_id", &request.trainer_id);
        let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
        let category = convert::class_category(&mut violations, request.category);
        let date = convert::date(&mut violations, "date", request.date.as_ref(), true);
        done(violations)?;
        let (Some(trainer_id), Some(studio_id), Some(date)) = (trainer_id, studio_id, date) else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let (version, rate) = self
            .directory
            .rate(&caller, trainer_id, studio_id, category, date)
            .await?;
        Ok(Response::new(convert::rate_response(&version, rate)))
    }

    async fn invite_team_member(
        &self,
        request: Request<pb::InviteTeamMemberRequest>,
    ) -> Result<Response<pb::InviteTeamMemberResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let idempotency = idempotency(
            &mut violations,
            &principal,
            "/fitflow.tenancy.v1.TenancyService/InviteTeamMember",
            &request,
            |request| &mut request.request_id,
        );
        let leader_id = uuid(&mut violations, "leader_id", &request.leader_id);
        let invitee = match &request.trainer {
            Some(pb::invite_team_member_request::Trainer::TrainerId(id)) => {
                trainer_ref(&mut violations, Some(id), None)
            }
            Some(pb::invite_team_member_request::Trainer::TrainerEmail(email)) => {
                trainer_ref(&mut violations, None, Some(email))
            }
            None => trainer_ref(&mut violations, None, None),
        };
        done(violations)?;
        let (Some(leader_id), Some(invitee)) = (leader_id, invitee) else {
            return Err(reject(ApiError::invalid_argument(Vec::new())));
        };
        let row = self
            .directory
            .invite_team_member(&principal, leader_id, invitee, idempotency)
            .await?;
        Ok(Response::new(pb::InviteTeamMemberResponse {
            invitation: Some(convert::team_invitation_out(&row)),
        }))
    }

    async fn list_team_invitations(
        &self,
        request: Request<pb::ListTeamInvitationsRequest>,
    ) -> Result<Response<pb::ListTeamInvitationsResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer_id = uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let rows = self
            .directory
            .team_invitations(&principal, trainer_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListTeamInvitationsResponse {
            invitations: rows.iter().map(convert::team_invitation_out).collect(),
        }))
    }

    async fn answer_team_invitation(
        &self,
        request: Request<pb::AnswerTeamInvitationRequest>,
    ) -> Result<Response<pb::AnswerTeamInvitationResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let invitation_id = uuid(
            &mut violations,
            "invitation_id",
            &request.get_ref().invitation_id,
        );
        done(violations)?;
        let row = self
            .directory
            .answer_team_invitation(
                &principal,
                invitation_id.unwrap_or_default(),
                request.get_ref().accept,
            )
            .await?;
        Ok(Response::new(pb::AnswerTeamInvitationResponse {
            invitation: Some(convert::team_invitation_out(&row)),
        }))
    }

    async fn leave_team(
        &self,
        request: Request<pb::LeaveTeamRequest>,
    ) -> Result<Response<pb::LeaveTeamResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer_id = uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let view = self
            .directory
            .leave_team(&principal, trainer_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::LeaveTeamResponse {
            trainer: Some(convert::trainer_out(view)),
        }))
    }

    async fn list_team_members(
        &self,
        request: Request<pb::ListTeamMembersRequest>,
    ) -> Result<Response<pb::ListTeamMembersResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let leader_id = uuid(&mut violations, "leader_id", &request.get_ref().leader_id);
        done(violations)?;
        let (members, truncated) = self
            .directory
            .team_members(&principal, leader_id.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListTeamMembersResponse {
            members: members.into_iter().map(convert::trainer_out).collect(),
            truncated,
        }))
    }
}

/// Who is invited: a trainer id, or the (normalised) email of their account.
fn trainer_ref(
    violations: &mut Violations,
    trainer_id: Option<&str>,
    trainer_email: Option<&str>,
) -> Option<TrainerRef> {
    match (trainer_id, trainer_email) {
        (Some(id), _) => uuid(violations, "trainer_id", id).map(TrainerRef::Id),
        (None, Some(email)) => {
            // Refused before the trim: trimming would quietly drop a vertical
            // tab or a next-line character at either end, and hostile input
            // is refused, never repaired.
            if email.chars().any(char::is_control) {
                violations.add("trainer_email", "must not hold control characters");
                return None;
            }
            let normalised = email.trim().to_lowercase();
            match crate::formats::email(&normalised) {
                Ok(()) => Some(TrainerRef::Email(normalised)),
                Err(problem) => {
                    violations.add("trainer_email", problem);
                    None
                }
            }
        }
        (None, None) => {
            violations.add("trainer_id", "is required (or trainer_email)");
            None
        }
    }
}

fn contract_and_etag(contract_id: &str, etag: &str) -> Result<(uuid::Uuid, String), Status> {
    let mut violations = Violations::new();
    let contract_id = uuid(&mut violations, "contract_id", contract_id);
    check_text(&mut violations, "etag", etag, TextKind::Line, 100);
    done(violations)?;
    Ok((contract_id.unwrap_or_default(), etag.to_owned()))
}
