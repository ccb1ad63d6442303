//! Billing as a platform service.

use fitflow_platform::{Service, ServiceContext, ServiceRoutes, StartFuture};
use fitflow_proto::billing::billing_service_server::BillingServiceServer;
use fitflow_server::PeerPolicy;
use sqlx::migrate::Migrator;

use crate::{
    BankAccounts, BillingGrpc, Invoicing, MIGRATOR, Payments, Peers, Remittances, SERVICE, TaxTable,
};

/// Largest request message: a quote of 500 lines fits well within it.
const MAX_MESSAGE: usize = 256 * 1024;

/// The billing service, for the platform's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct BillingService;

impl Service for BillingService {
    fn name(&self) -> &'static str {
        SERVICE
    }

    fn migrations(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn peer_policy(&self) -> PeerPolicy {
        crate::peer_policy()
    }

    fn start(&self, context: ServiceContext) -> StartFuture<'_> {
        Box::pin(async move {
            let channel = |peer: &'static str| {
                context.peers.channel(peer).map_err(|error| {
                    anyhow::anyhow!("cannot prepare the channel to {peer}: {error}")
                })
            };
            let peers = Peers::new(
                channel("clients")?,
                channel("tenancy")?,
                channel("scheduling")?,
            );
            let table = TaxTable::new(context.pool.clone());
            let invoicing = Invoicing::new(context.pool.clone(), peers, context.keyring.clone());
            let accounts = BankAccounts::new(context.pool.clone(), context.keyring.clone());
            let remittances = Remittances::new(context.pool.clone());
            let payments = Payments::new(context.pool.clone(), context.system_pool.clone());
            // The overdue sweep, until shutdown (every replica may run it:
            // it skips invoices another holds and changes each once).
            context.spawn(crate::payments::sweep_until(
                context.system_pool.clone(),
                context.shutdown.clone(),
            ));
            Ok(ServiceRoutes::new().add_service(
                BillingServiceServer::new(BillingGrpc::new(
                    table,
                    invoicing,
                    accounts,
                    remittances,
                    payments,
                    context.system_pool.clone(),
                ))
                .max_decoding_message_size(MAX_MESSAGE),
            ))
        })
    }
}
