//! `ListStudioRoster`: a studio's sessions and their clients by name, for
//! the studio's managers (the trait method in `grpc.rs` delegates here).

use fitflow_api::page::{PageQuery, TimeIdCursor, page_size};
use fitflow_api::text::uuid;
use fitflow_api::time::required_timestamp;
use fitflow_auth::Caller;
use fitflow_error::Violations;
use fitflow_proto::scheduling as pb;
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{RPC, SchedulingGrpc, cursor, done, principal};
use crate::calendar::RosterQuery;
use crate::{convert, domain};

/// Largest page of a roster, in sessions (a class may carry hundreds of
/// names).
const MAX_ROSTER_PAGE: u32 = 100;
/// A roster's page when none is asked.
const DEFAULT_ROSTER_PAGE: u32 = 20;

impl SchedulingGrpc {
    pub(super) async fn studio_roster(
        &self,
        request: Request<pb::ListStudioRosterRequest>,
    ) -> Result<Response<pb::ListStudioRosterResponse>, Status> {
        let principal = principal(&request)?;
        let token = fitflow_auth::forwarded_bearer(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let studio_id = uuid(&mut violations, "studio_id", &request.studio_id);
        let size = match request.page_size {
            0 => DEFAULT_ROSTER_PAGE,
            _ => page_size(&mut violations, request.page_size, MAX_ROSTER_PAGE),
        };
        let from = required_timestamp(&mut violations, "start_time", request.start_time.as_ref());
        let to = required_timestamp(&mut violations, "end_time", request.end_time.as_ref());
        if let (Some(from), Some(to)) = (from, to)
            && !domain::valid_roster_window(from, to)
        {
            violations.add(
                "end_time",
                "must be after start_time and at most 31 days later",
            );
        }
        let caller = Caller::User(principal.clone());
        let filter = pb::ListStudioRosterRequest {
            page_size: 0,
            page_token: String::new(),
            ..request.clone()
        }
        .encode_to_vec();
        let method = format!("{RPC}ListStudioRoster");
        let query = PageQuery {
            method: &method,
            caller: &caller,
            filter: &filter,
        };
        let after: Option<TimeIdCursor> =
            self.calendar
                .page_tokens()
                .read(&mut violations, &query, &request.page_token);
        done(violations)?;
        let roster = RosterQuery {
            studio_id: studio_id.unwrap_or_default(),
            window: (from.unwrap_or_default(), to.unwrap_or_default()),
            show_cancelled: request.show_cancelled,
            after: after.map(|position| (position.at, position.id)),
            page_size: size,
        };
        let (sessions, next) = self.calendar.roster(&principal, &token, roster).await?;
        Ok(Response::new(pb::ListStudioRosterResponse {
            sessions: sessions
                .into_iter()
                .map(convert::roster_session_out)
                .collect(),
            next_page_token: cursor(next, |position| {
                self.calendar.page_tokens().issue(&query, position)
            }),
        }))
    }
}
