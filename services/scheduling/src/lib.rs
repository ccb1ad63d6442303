//! The scheduling service: class types, appointments and availability. Its
//! promise is the calendar's: a trainer is never booked twice at the same
//! moment, enforced by PostgreSQL (an exclusion constraint on
//! `trainer_busy`, written in the same transaction as each live
//! appointment), with a handler check in front that names the conflicting
//! appointment.
//!
//! Reads top-down: [`grpc`] (handlers; with `convert`, the only place proto
//! types appear) → `calendar` (use cases; each owns its transaction and
//! writes its audit event in it) → [`domain`], [`series`], [`slots`],
//! [`overlap`] and [`ics`] (pure rules and formats), `clients` (the access check the
//! clients service answers), `tenancy` (trainers' and studios' time zones, contracts) and `repo`
//! (every SQL statement). [`notify`] mails clients their bookings, waitlist
//! promotions, cancellations and reminders, reliably and once.
//! Row-level security (`FORCE`) repeats the handlers' check: rows belong to
//! whoever acts for their trainer.

pub mod bench;
mod calendar;
mod clients;
mod convert;
pub mod domain;
mod error;
pub mod grpc;
pub mod ics;
pub mod notify;
pub mod overlap;
mod repo;
pub mod series;
mod service;
pub mod slots;
mod tenancy;

use fitflow_server::{EDGE_PEERS, PeerPolicy};

pub use calendar::Calendar;
pub use clients::ClientAccess;
pub use error::SchedulingError;
pub use grpc::SchedulingGrpc;
pub use service::SchedulingService;
pub use tenancy::TrainerZones;

/// The service's name, schema and audit source.
pub const SERVICE: &str = "scheduling";
/// `google.rpc.ErrorInfo` domain of its errors.
pub const ERROR_DOMAIN: &str = "fitflow.scheduling";
/// Its migrations (reversible).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Who may call what: the gateway and operators, the public RPCs; clients
/// alone reads a client's appointments for their export; documentation and
/// billing ask whether a client attended; billing alone lists what it may
/// invoice (clients' items, and sessions held at studios) and sets payment
/// status.
pub fn peer_policy() -> PeerPolicy {
    PeerPolicy::new(EDGE_PEERS)
        .allow(
            "/fitflow.scheduling.v1.SchedulingService/ExportClientAppointments",
            &["clients"],
        )
        .allow(
            "/fitflow.scheduling.v1.SchedulingService/GetAttendance",
            &["documentation", "billing"],
        )
        .allow(
            "/fitflow.scheduling.v1.SchedulingService/ListBillableAppointments",
            &["billing"],
        )
        .allow(
            "/fitflow.scheduling.v1.SchedulingService/ListStudioSessions",
            &["billing"],
        )
        .allow(
            "/fitflow.scheduling.v1.SchedulingService/SetPaymentStatus",
            &["billing"],
        )
}
