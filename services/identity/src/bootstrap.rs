//! Making the first operator. Operators are granted by operators; the first
//! one is granted from the command line by whoever runs the deployment
//! (`fitflow identity grant-operator <email>`), with an audit event naming the
//! identity service as the actor.

use fitflow_auth::Role;
use fitflow_db::SystemPool;
use fitflow_outbox::{Action, AuditEventBuilder};
use uuid::Uuid;

use crate::{IdentityError, SERVICE, domain, repo};

/// Grants the operator role to the active account with `email`; returns its id.
pub async fn grant_operator(pool: &SystemPool, email: &str) -> Result<Uuid, IdentityError> {
    let email = domain::normalize_email(email).ok_or(IdentityError::UserNotFound)?;
    let mut tx = fitflow_db::system_tx(pool).await?;
    let user = repo::find_user_by_email(&mut tx, &email)
        .await?
        .filter(|user| user.status == "active")
        .ok_or(IdentityError::UserNotFound)?;
    let operator = Role::Operator.as_str().to_owned();
    if !user.roles.contains(&operator) {
        let mut roles = user.roles.clone();
        roles.push(operator);
        repo::set_roles(&mut tx, user.id, &roles).await?;
        let event = AuditEventBuilder::new(SERVICE, Action::Update, "users", user.id)
            .actor_service(SERVICE)
            .tenant(user.id)
            .change("roles", &user.roles.join(","), &roles.join(","))
            .build();
        fitflow_outbox::record(&mut tx, &event).await?;
    }
    tx.commit().await.map_err(fitflow_db::DbError::from)?;
    Ok(user.id)
}
