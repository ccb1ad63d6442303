//! ExportTrainerCalendar: a trainer's schedule as a streamed `.ics` file
//! (the trait method in `grpc.rs` delegates here).

use std::pin::Pin;

use fitflow_api::text::optional_uuid;
use fitflow_api::time::required_timestamp;
use fitflow_error::Violations;
use fitflow_proto::scheduling as pb;
use futures::Stream;
use tonic::{Request, Response, Status};

use super::{SchedulingGrpc, done, principal};
use crate::domain;

/// Largest chunk of the file in one message.
const CHUNK_BYTES: usize = 64 * 1024;

/// The stream of a calendar export's chunks.
pub(super) type CalendarStream =
    Pin<Box<dyn Stream<Item = Result<pb::ExportTrainerCalendarResponse, Status>> + Send>>;

impl SchedulingGrpc {
    pub(super) async fn export_calendar(
        &self,
        request: Request<pb::ExportTrainerCalendarRequest>,
    ) -> Result<Response<CalendarStream>, Status> {
        let principal = principal(&request)?;
        let request = request.get_ref();
        let mut violations = Violations::new();
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.trainer_id);
        let from = required_timestamp(&mut violations, "start_time", request.start_time.as_ref());
        let to = required_timestamp(&mut violations, "end_time", request.end_time.as_ref());
        if let (Some(from), Some(to)) = (from, to)
            && !domain::valid_export_window(from, to)
        {
            violations.add(
                "end_time",
                "must be after start_time and at most 366 days later",
            );
        }
        done(violations)?;
        let window = (from.unwrap_or_default(), to.unwrap_or_default());
        let export = self
            .calendar
            .export_trainer_calendar(&principal, trainer, window)
            .await?;
        // The whole file is made before the first chunk: every refusal comes
        // as the call's status, never after part of a file.
        let chunks: Vec<Result<pb::ExportTrainerCalendarResponse, Status>> = export
            .ics
            .as_bytes()
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(index, chunk)| {
                Ok(pb::ExportTrainerCalendarResponse {
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
}
