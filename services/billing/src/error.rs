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
    /// A figure of a remittance would not fit NUMERIC(12,2).
    #[error("remittance too large")]
    RemittanceTooLarge,
    /// No bank account the caller owns.
    #[error("bank account not found")]
    BankAccountNotFound,
    /// The bank account is closed.
    #[error("bank account state")]
    BankAccountState,
    /// The trainer has as many bank accounts as allowed.
    #[error("bank account limit")]
    BankAccountLimit,
    /// No remittance the caller owns.
    #[error("remittance not found")]
    RemittanceNotFound,
    /// The remittance's status does not allow this.
    #[error("remittance state")]
    RemittanceState,
    /// Another remittance of the tax covers part of the period.
    #[error("remittance period overlaps")]
    RemittancePeriodOverlaps,
    /// Taxable supplies above the quick method's limit.
    #[error("quick method not eligible")]
    QuickMethodNotEligible,
    /// No published quick-method rate for a supply.
    #[error("quick method rate missing")]
    QuickMethodRateMissing,
    /// No payment or refund the caller may see.
    #[error("payment not found")]
    PaymentNotFound,
    /// The payment exceeds the invoice's balance (overpayments are refused).
    #[error("payment exceeds balance")]
    PaymentExceedsBalance {
        /// What remains due.
        balance: rust_decimal::Decimal,
    },
    /// The invoice is paid in full.
    #[error("invoice paid")]
    InvoicePaid,
    /// The refund exceeds what remains refundable of the payment.
    #[error("refund exceeds payment")]
    RefundExceedsPayment {
        /// What remains refundable.
        refundable: rust_decimal::Decimal,
    },
    /// A refund is not refunded.
    #[error("payment state")]
    PaymentState,
    /// The invoice has payments not refunded.
    #[error("invoice has payments")]
    InvoiceHasPayments,
    /// No billable item of the client in the period is left to bill.
    #[error("nothing to bill")]
    NothingToBill,
    /// The province of supply of an item cannot be decided.
    #[error("province of supply unknown")]
    ProvinceOfSupplyUnknown,
    /// A session is drawn from a pack the invoice sold.
    #[error("session pack in use")]
    SessionPackInUse,
    /// A session held at the studio on this date has no contract rate.
    #[error("no contract rate on {0}")]
    NoContractRate(chrono::NaiveDate),
    /// Tenancy shows no such studio.
    #[error("studio not found")]
    StudioNotFound,
    /// The studio's invoices go to its chain's headquarters (this id).
    #[error("studio billed elsewhere")]
    StudioBilledElsewhere(uuid::Uuid),
    /// The caller does not manage the studio.
    #[error("studio not managed")]
    StudioNotManaged,
    /// Sealing or opening a field failed (OpenBao, a tampered value).
    #[error(transparent)]
    Crypto(#[from] fitflow_crypto::CryptoError),
    /// Too many studio drafts at once in this instance (the gate's line is
    /// full); retry after the hinted delay.
    #[error(transparent)]
    Busy(#[from] fitflow_api::gate::Busy),
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

impl From<crate::tax_return::ReturnError> for BillingError {
    fn from(error: crate::tax_return::ReturnError) -> Self {
        match error {
            crate::tax_return::ReturnError::RateMissing { .. } => {
                BillingError::QuickMethodRateMissing
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
            BillingError::RemittanceTooLarge => ApiError::new(
                Code::FailedPrecondition,
                "REMITTANCE_TOO_LARGE",
                "a figure of the remittance would exceed 9999999999.99; split the period",
            ),
            BillingError::BankAccountNotFound => {
                ApiError::not_found("BANK_ACCOUNT_NOT_FOUND", "no such bank account")
            }
            BillingError::BankAccountState => ApiError::new(
                Code::FailedPrecondition,
                "BANK_ACCOUNT_STATE",
                "the bank account is closed",
            ),
            BillingError::BankAccountLimit => ApiError::new(
                Code::FailedPrecondition,
                "BANK_ACCOUNT_LIMIT",
                "a trainer keeps at most 50 bank accounts, closed ones included",
            ),
            BillingError::RemittanceNotFound => {
                ApiError::not_found("REMITTANCE_NOT_FOUND", "no such tax remittance")
            }
            BillingError::RemittanceState => ApiError::new(
                Code::FailedPrecondition,
                "REMITTANCE_STATE",
                "the remittance's status does not allow this",
            ),
            BillingError::RemittancePeriodOverlaps => ApiError::new(
                Code::FailedPrecondition,
                "REMITTANCE_PERIOD_OVERLAPS",
                "another remittance of this tax covers part of the period with other bounds",
            ),
            BillingError::QuickMethodNotEligible => ApiError::new(
                Code::FailedPrecondition,
                "QUICK_METHOD_NOT_ELIGIBLE",
                "the quick method is open only with taxable supplies of at most 400000.00 in the \
                 four quarters ending with the period",
            ),
            BillingError::QuickMethodRateMissing => ApiError::new(
                Code::FailedPrecondition,
                "QUICK_METHOD_RATE_MISSING",
                "no published quick-method rate for a province of supply from this establishment \
                 on that date",
            ),
            BillingError::PaymentNotFound => {
                ApiError::not_found("PAYMENT_NOT_FOUND", "no such payment")
            }
            BillingError::PaymentExceedsBalance { balance } => ApiError::new(
                Code::FailedPrecondition,
                "PAYMENT_EXCEEDS_BALANCE",
                format!(
                    "the payment exceeds the invoice's balance of {}; overpayments are refused",
                    fitflow_api::money::two_decimals(balance)
                ),
            )
            .with_metadata("balance", fitflow_api::money::two_decimals(balance))
            .with_metadata("currency_code", fitflow_api::money::CURRENCY),
            BillingError::InvoicePaid => ApiError::new(
                Code::FailedPrecondition,
                "INVOICE_PAID",
                "the invoice is paid in full",
            ),
            BillingError::RefundExceedsPayment { refundable } => ApiError::new(
                Code::FailedPrecondition,
                "REFUND_EXCEEDS_PAYMENT",
                format!(
                    "the refund exceeds the {} that remains refundable of the payment",
                    fitflow_api::money::two_decimals(refundable)
                ),
            )
            .with_metadata("refundable", fitflow_api::money::two_decimals(refundable))
            .with_metadata("currency_code", fitflow_api::money::CURRENCY),
            BillingError::PaymentState => ApiError::new(
                Code::FailedPrecondition,
                "PAYMENT_STATE",
                "a refund is not refunded; refund its payment",
            ),
            BillingError::InvoiceHasPayments => ApiError::new(
                Code::FailedPrecondition,
                "INVOICE_HAS_PAYMENTS",
                "the invoice has payments that are not refunded; refund them first",
            ),
            BillingError::NothingToBill => ApiError::new(
                Code::FailedPrecondition,
                "NOTHING_TO_BILL",
                "scheduling lists nothing billable for this client or studio in the period that \
                 is not billed already",
            ),
            BillingError::ProvinceOfSupplyUnknown => ApiError::new(
                Code::FailedPrecondition,
                "PROVINCE_OF_SUPPLY_UNKNOWN",
                "the province of supply cannot be decided: the issuer needs a trainer profile in \
                 tenancy, and each studio a province",
            ),
            BillingError::SessionPackInUse => ApiError::new(
                Code::FailedPrecondition,
                "SESSION_PACK_IN_USE",
                "a session is drawn from a pack this invoice sold; void the invoices that drew \
                 it first",
            ),
            BillingError::NoContractRate(date) => ApiError::new(
                Code::FailedPrecondition,
                "NO_CONTRACT_RATE",
                format!(
                    "no contract with the studio covers {date}, the date of a session held there"
                ),
            )
            .with_metadata("date", date.to_string()),
            BillingError::StudioNotFound => {
                ApiError::not_found("STUDIO_NOT_FOUND", "no such studio")
            }
            BillingError::StudioBilledElsewhere(headquarters) => ApiError::new(
                Code::FailedPrecondition,
                "STUDIO_BILLED_ELSEWHERE",
                "the studio's invoices go to its chain's headquarters; draft the invoice to it",
            )
            .with_metadata("billing_studio_id", headquarters.to_string()),
            BillingError::StudioNotManaged => ApiError::new(
                Code::PermissionDenied,
                "STUDIO_NOT_MANAGED",
                "only the studio's managers read the invoices addressed to it",
            ),
            BillingError::Busy(_) => ApiError::new(
                Code::ResourceExhausted,
                "BILLING_BUSY",
                "too many of these requests at once; retry after the hinted delay",
            ),
            BillingError::Crypto(error) => error.into(),
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
        use tonic_types::StatusExt as _;
        let retry_after = match &error {
            BillingError::Busy(busy) => Some(busy.retry_after),
            _ => None,
        };
        let status = ApiError::from(error).into_status(crate::ERROR_DOMAIN);
        let Some(retry_after) = retry_after else {
            return status;
        };
        // RESOURCE_EXHAUSTED with a google.rpc.RetryInfo: when to come back.
        let mut details = status.get_error_details();
        details.set_retry_info(Some(retry_after));
        tonic::Status::with_error_details(status.code(), status.message(), details)
    }
}
