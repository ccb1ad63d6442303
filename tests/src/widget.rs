//! A throwaway service for the platform test (never shipped): implemented
//! once against the platform trait, it is served with health, reflection,
//! mTLS peer policy, migrations, an outbox relay and audit events, with no
//! edit to the binary or the stack. It borrows the `documentation` row of
//! the table of services, which no build implements yet.

use fitflow_auth::Caller;
use fitflow_outbox::{Action, AuditEventBuilder};
use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_server::{EDGE_PEERS, PeerPolicy};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Generated code of `fitflow.testing.v1`.
pub mod proto {
    tonic::include_proto!("fitflow.testing.v1");
}

/// Its descriptor set, for reflection.
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/widget_descriptor.bin"));

/// The name it serves under: a row of the table, whose real service the
/// widget's registry leaves out (every row is implemented now).
pub const WIDGETS: &str = "documentation";

const DOMAIN: &str = "fitflow.testing";

static MIGRATOR: Migrator = sqlx::migrate!("./widget_migrations");

/// The throwaway service.
#[derive(Debug, Clone, Copy, Default)]
pub struct WidgetService;

impl Service for WidgetService {
    fn name(&self) -> &'static str {
        WIDGETS
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn peer_policy(&self) -> PeerPolicy {
        PeerPolicy::new(EDGE_PEERS)
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            Ok(ServiceRoutes::new()
                .add_service(proto::widget_service_server::WidgetServiceServer::new(
                    Widgets { pool: context.pool },
                ))
                .with_descriptors(DESCRIPTORS))
        })
    }
}

struct Widgets {
    pool: PgPool,
}

#[tonic::async_trait]
impl proto::widget_service_server::WidgetService for Widgets {
    async fn create_widget(
        &self,
        request: Request<proto::CreateWidgetRequest>,
    ) -> Result<Response<proto::Widget>, Status> {
        let principal = fitflow_auth::principal(&request)
            .map_err(|error| error.into_status(DOMAIN))?
            .clone();
        let name = request.into_inner().name;
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Status::invalid_argument(
                "name must have 1 to 100 characters",
            ));
        }
        let id = Uuid::new_v4();
        let internal = |error: &dyn std::fmt::Display| {
            fitflow_error::ApiError::internal(error).into_status(DOMAIN)
        };
        let mut tx = fitflow_db::tx(&self.pool, &Caller::User(principal.clone()))
            .await
            .map_err(|error| internal(&error))?;
        sqlx::query("INSERT INTO widgets (id, owner_id, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(principal.user_id)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(|error| internal(&error))?;
        let event = AuditEventBuilder::new(WIDGETS, Action::Create, "widgets", id)
            .actor_user(principal.user_id)
            .build();
        fitflow_outbox::record(&mut tx, &event)
            .await
            .map_err(|error| internal(&error))?;
        tx.commit().await.map_err(|error| internal(&error))?;
        Ok(Response::new(proto::Widget {
            id: id.to_string(),
            name,
        }))
    }
}
