//! The mail identity sends: the one-time codes that prove an address
//! (verification) and let a forgotten password be replaced (reset). They
//! leave FitFlow only by mail, never in an RPC response (DESIGN.md §4).
//!
//! Sending runs in the background after the request's transaction
//! committed: the response never waits on the SMTP server, so its timing
//! does not tell whether an address has an account, and a slow server
//! never holds a request. A failed send is logged without the recipient or
//! the code; the user asks again (`ResendVerification`,
//! `RequestPasswordReset`).

use fitflow_mail::{Mail, Mailer};

use crate::domain::{EMAIL_VERIFICATION_TTL, PASSWORD_RESET_TTL};

/// The product name in every subject and greeting.
const PRODUCT: &str = "FitFlow";
/// Subject of the verification mail.
pub const VERIFICATION_SUBJECT: &str = "Verify your email";
/// Subject of the reset mail.
pub const RESET_SUBJECT: &str = "Reset your password";

/// Writes and sends identity's mail.
#[derive(Clone, Debug)]
pub struct Letters {
    mailer: Mailer,
}

/// The verification mail's text.
fn verification_text(code: &str) -> String {
    format!(
        "Welcome to {PRODUCT}.\n\n\
         To confirm this is your email address, enter this code in {PRODUCT}:\n\n\
         {code}\n\n\
         The code works once and expires in {} hours. If you did not create a \
         {PRODUCT} account, ignore this message.\n",
        EMAIL_VERIFICATION_TTL.num_hours()
    )
}

/// The reset mail's text.
fn reset_text(code: &str) -> String {
    format!(
        "Someone asked to reset the password of your {PRODUCT} account.\n\n\
         To choose a new password, enter this code in {PRODUCT}:\n\n\
         {code}\n\n\
         The code works once and expires in {} minutes; using it signs you out \
         everywhere. If you did not ask, ignore this message: your password is \
         unchanged.\n",
        PASSWORD_RESET_TTL.num_minutes()
    )
}

impl Letters {
    /// Letters sent through `mailer`.
    pub fn new(mailer: Mailer) -> Self {
        Self { mailer }
    }

    /// Mails `code`, proving `to` is the account's address.
    pub fn send_verification(&self, to: &str, code: String) {
        self.send(Mail {
            to: to.to_owned(),
            subject: format!("{PRODUCT}: {VERIFICATION_SUBJECT}"),
            text: verification_text(&code),
        });
    }

    /// Mails the password-reset `code` to `to`.
    pub fn send_reset(&self, to: &str, code: String) {
        self.send(Mail {
            to: to.to_owned(),
            subject: format!("{PRODUCT}: {RESET_SUBJECT}"),
            text: reset_text(&code),
        });
    }

    fn send(&self, mail: Mail) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(error) = mailer.send(mail).await {
                // The error never holds the message or its recipient.
                tracing::warn!(%error, "an identity mail could not be sent");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_letter_names_the_product_holds_the_code_once_and_says_when_it_expires() {
        let verification = verification_text("CODE-123");
        assert!(verification.starts_with("Welcome to FitFlow."));
        assert_eq!(verification.matches("CODE-123").count(), 1);
        assert!(
            verification.contains("expires in 48 hours"),
            "{verification}"
        );
        let reset = reset_text("CODE-456");
        assert_eq!(reset.matches("CODE-456").count(), 1);
        assert!(reset.contains("expires in 60 minutes"), "{reset}");
    }
}
