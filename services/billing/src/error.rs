//! The billing service's errors and their one mapping to what callers see.

use fitflow_error::ApiError;
use tonic::Code;

/// Everything that can go wrong in the billing service.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// Already classified (bad input, role checks).
    #[error(transparent)]
    Rejected(#[from] ApiError),
    /// The tax table cannot price a line (no federal rate on that date).
    #[error("no tax rate")]
    NoTaxRate,
    /// A new rate must start after the version in force, today or later.
    #[error("tax rate not later")]
    TaxRateNotLater,
    /// Already classified contract error (etag, request id).
    #[error(transparent)]
    Contract(#[from] fitflow_api::ContractError),
    /// No invoice the caller may see.
    #[error("invoice not found")]
    InvoiceNotFound,
    /// The invoice's state does not allow this.
    #[error("invoice state")]
    InvoiceState,
    /// Clients says the caller may not bill this client.
    #[error("client not found")]
    ClientNotFound,
    /// The caller does not act for the trainer.
    #[error("trainer not found")]
    TrainerNotFound,
    /// The issuer has no tax profile.
    #[error("tax profile required")]
    TaxProfileRequired,
    /// Credit notes would credit more than the invoice.
    #[error("credit exceeds invoice")]
    CreditExceedsInvoice,
    /// An amount of the issued document (its total with tax, a tax line)
    /// would not fit NUMERIC(12,2).
    #[error("invoice too large")]
    InvoiceTooLarge,
    /// Clients or tenancy could not answer.
    #[error("dependency unavailable: {0}")]
    DependencyUnavailable(String),
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] fitflow_db::DbError),
    /// Writing the audit event failed.
    #[error(transparent)]
    Outbox(#[from] fitflow_outbox::OutboxError),
    /// A stored value could not be read back, or the table is inconsistent.
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
}

impl From<sqlx::Error> for BillingError {
    fn from(error: sqlx::Error) -> Self {
        BillingError::Database(error.into())
    }
}

impl From<crate::tax::TaxError> for BillingError {
    fn from(error: crate::tax::TaxError) -> Self {
        match error {
            crate::tax::TaxError::NoFederalRate { .. } => BillingError::NoTaxRate,
            crate::tax::TaxError::Ambiguous { .. } => {
                BillingError::Corrupt("overlapping tax rates")
            }
        }
    }
}

impl From<BillingError> for ApiError {
    fn from(error: BillingError) -> Self {
        match error {
            BillingError::Rejected(api) => api,
            BillingError::NoTaxRate => ApiError::new(
                Code::FailedPrecondition,
                "NO_TAX_RATE",
                "the tax table has no GST or HST in force on that date",
            ),
            BillingError::TaxRateNotLater => ApiError::new(
                Code::FailedPrecondition,
                "TAX_RATE_NOT_LATER",
                "a new rate takes effect today or later, after the version in force starts",
            ),
            BillingError::Contract(contract) => contract.into(),
            BillingError::InvoiceNotFound => {
                ApiError::not_found("INVOICE_NOT_FOUND", "no such invoice")
            }
            BillingError::InvoiceState => ApiError::new(
                Code::FailedPrecondition,
                "INVOICE_STATE",
                "the invoice's status does not allow this",
            ),
            BillingError::ClientNotFound => {
                ApiError::not_found("CLIENT_NOT_FOUND", "no such client")
            }
            BillingError::TrainerNotFound => ApiError::not_found(
                "TRAINER_NOT_FOUND",
                "no trainer the caller acts for with this id",
            ),
            BillingError::TaxProfileRequired => ApiError::new(
                Code::FailedPrecondition,
                "TAX_PROFILE_REQUIRED",
                "the issuer needs a tax profile (tenancy) before invoices are issued",
            ),
            BillingError::CreditExceedsInvoice => ApiError::new(
                Code::FailedPrecondition,
                "CREDIT_EXCEEDS_INVOICE",
                "the invoice's credit notes would credit more than its subtotal, or than it billed \
                 in that province and treatment",
            ),
            BillingError::InvoiceTooLarge => ApiError::new(
                Code::FailedPrecondition,
                "INVOICE_TOO_LARGE",
                "with its tax, the invoice's total would exceed 9999999999.99; split it",
            ),
            BillingError::DependencyUnavailable(_) => ApiError::unavailable(
                "DEPENDENCY_UNAVAILABLE",
                "a service billing relies on cannot be reached; retry with backoff",
            ),
            BillingError::Database(error) => error.into(),
            BillingError::Outbox(error) => error.into(),
            BillingError::Corrupt(_) => ApiError::internal(&error),
        }
    }
}

impl From<BillingError> for tonic::Status {
    fn from(error: BillingError) -> Self {
        ApiError::from(error).into_status(crate::ERROR_DOMAIN)
    }
}
