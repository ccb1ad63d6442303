//! The scheduling settings RPCs (the trait methods in `grpc.rs` delegate
//! here).

use fitflow_api::field_mask::fields_to_update;
use fitflow_api::text::{TextKind, check_text, optional_uuid};
use fitflow_api::time::to_timestamp;
use fitflow_error::Violations;
use fitflow_proto::scheduling as pb;
use tonic::{Request, Response, Status};

use super::{SchedulingGrpc, done, principal};
use crate::calendar::{Settings, SettingsChange};
use crate::slots::MAX_BUFFER_MINUTES;

/// The fields UpdateSchedulingSettings may change, as named in `update_mask`.
const UPDATABLE: [&str; 1] = ["default_buffer_minutes"];

/// The change an UpdateSchedulingSettings request describes, validated.
fn settings_change(
    violations: &mut Violations,
    value: &pb::SchedulingSettings,
    mask_paths: &[String],
) -> SettingsChange {
    let trainer_id = optional_uuid(violations, "settings.trainer_id", &value.trainer_id);
    check_text(
        violations,
        "settings.etag",
        &value.etag,
        TextKind::Line,
        100,
    );
    let populated: &[&str] = if value.default_buffer_minutes != 0 {
        &UPDATABLE
    } else {
        &[]
    };
    let fields = fields_to_update(violations, mask_paths, &UPDATABLE, populated);
    let mut change = SettingsChange {
        trainer_id,
        etag: value.etag.clone(),
        ..SettingsChange::default()
    };
    if fields.contains("default_buffer_minutes") {
        if (0..=MAX_BUFFER_MINUTES).contains(&value.default_buffer_minutes) {
            change.default_buffer_minutes = Some(value.default_buffer_minutes);
        } else {
            violations.add("settings.default_buffer_minutes", "must be 0 to 240");
        }
    }
    change
}

/// The wire form of a trainer's settings.
fn settings_out(settings: Settings) -> pb::SchedulingSettings {
    pb::SchedulingSettings {
        trainer_id: settings.trainer_id.to_string(),
        default_buffer_minutes: settings.default_buffer_minutes,
        etag: settings
            .etag
            .map(|etag| etag.as_str().to_owned())
            .unwrap_or_default(),
        update_time: settings.updated_at.map(to_timestamp),
    }
}

impl SchedulingGrpc {
    pub(super) async fn get_settings(
        &self,
        request: Request<pb::GetSchedulingSettingsRequest>,
    ) -> Result<Response<pb::GetSchedulingSettingsResponse>, Status> {
        let principal = principal(&request)?;
        let mut violations = Violations::new();
        let trainer = optional_uuid(&mut violations, "trainer_id", &request.get_ref().trainer_id);
        done(violations)?;
        let settings = self.calendar.settings(&principal, trainer).await?;
        Ok(Response::new(pb::GetSchedulingSettingsResponse {
            settings: Some(settings_out(settings)),
        }))
    }

    pub(super) async fn update_settings(
        &self,
        request: Request<pb::UpdateSchedulingSettingsRequest>,
    ) -> Result<Response<pb::UpdateSchedulingSettingsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let mask_paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let change = settings_change(
            &mut violations,
            &request.settings.unwrap_or_default(),
            &mask_paths,
        );
        done(violations)?;
        let settings = self.calendar.update_settings(&principal, change).await?;
        Ok(Response::new(pb::UpdateSchedulingSettingsResponse {
            settings: Some(settings_out(settings)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(buffer: i32, paths: &[&str]) -> (SettingsChange, Vec<String>) {
        let mut violations = Violations::new();
        let paths: Vec<String> = paths.iter().map(|path| (*path).to_owned()).collect();
        let value = pb::SchedulingSettings {
            default_buffer_minutes: buffer,
            ..Default::default()
        };
        let change = settings_change(&mut violations, &value, &paths);
        let fields = violations.fields().map(str::to_owned).collect();
        (change, fields)
    }

    #[test]
    fn a_buffer_is_written_when_given_or_named_in_the_mask_and_refused_outside_0_to_240() {
        assert_eq!(change(30, &[]).0.default_buffer_minutes, Some(30));
        assert_eq!(
            change(0, &[]).0.default_buffer_minutes,
            None,
            "0 unmasked keeps"
        );
        assert_eq!(
            change(0, &["default_buffer_minutes"])
                .0
                .default_buffer_minutes,
            Some(0),
            "the mask clears it"
        );
        assert_eq!(change(0, &["*"]).0.default_buffer_minutes, Some(0));
        assert_eq!(change(241, &[]).1, ["settings.default_buffer_minutes"]);
        assert_eq!(change(-1, &["*"]).1, ["settings.default_buffer_minutes"]);
        assert_eq!(change(30, &["buffer"]).1, ["update_mask.paths[0]"]);
    }
}
