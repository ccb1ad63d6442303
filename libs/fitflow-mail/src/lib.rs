//! Mail from FitFlow services over SMTP, sent the same way by every service
//! (identity's verification and reset links, tenancy's invitations,
//! scheduling's reminders).
//!
//! One [`Mailer`] per process, built from [`MailSettings`]: `smtp://host:port`
//! upgrades to TLS with STARTTLS whenever the server offers it (rustls with
//! the ring provider; the certificate must be valid for `host`), and sends
//! in the clear only to a server that offers no STARTTLS (the dev stack's
//! sink); `smtps://host:port` speaks TLS from the first byte. Messages are
//! plain text in UTF-8.
//!
//! A message body may hold a secret (a one-time link): neither the body nor
//! the recipient ever appears in an error or a log line here — not even
//! through the server's reply, which may quote the recipient.

use std::fmt;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Where and as whom to send.
#[derive(Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// `smtp://host[:port]` (port 25 by default; STARTTLS when offered) or
    /// `smtps://host[:port]` (port 465 by default; TLS from the start).
    pub url: String,
    /// The sender, e.g. `FitFlow <no-reply@fitflow.example>`.
    pub from: String,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL could carry credentials one day: print only its scheme.
        let scheme = self.url.split_once("://").map_or("?", |(scheme, _)| scheme);
        formatter
            .debug_struct("MailSettings")
            .field("url", &format_args!("{scheme}://…"))
            .field("from", &self.from)
            .finish()
    }
}

/// One plain-text message.
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The text; may hold a secret link, so it is never printed.
    pub text: String,
}

impl fmt::Debug for Mail {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why mail could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The settings are unusable (bad URL, scheme or sender).
    #[error("mail settings: {0}")]
    Settings(String),
    /// The recipient is not an email address.
    #[error("the recipient is not an email address")]
    Recipient,
    /// The message could not be built.
    #[error("the message could not be built")]
    Message,
    /// The SMTP server could not be reached or refused the message.
    #[error("smtp: {0}")]
    Smtp(SmtpFailure),
}

/// What went wrong with the SMTP server, without its words: a server's
/// reply may echo the recipient ("550 <ana@example.com>: no such user"),
/// so only the kind of failure and the reply code are kept, and lettre's
/// error is not kept as a source a logger could print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpFailure {
    /// `permanent`, `transient`, `timeout`, `tls`, `connection`, `response`
    /// or `client`.
    pub kind: &'static str,
    /// The server's reply code, when it replied with one (e.g. `550`).
    pub code: Option<String>,
}

impl fmt::Display for SmtpFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(formatter, "{} failure (reply {code})", self.kind),
            None => write!(formatter, "{} failure", self.kind),
        }
    }
}

impl From<lettre::transport::smtp::Error> for MailError {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        let kind = if error.is_permanent() {
            "permanent"
        } else if error.is_transient() {
            "transient"
        } else if error.is_timeout() {
            "timeout"
        } else if error.is_tls() {
            "tls"
        } else if error.is_response() {
            "response"
        } else if error.is_client() {
            "client"
        } else {
            "connection"
        };
        MailError::Smtp(SmtpFailure {
            kind,
            code: error.status().map(|code| code.to_string()),
        })
    }
}

/// Sends mail over one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings`; connects only when sending.
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| MailError::Settings("`from` is not a mailbox".to_owned()))?;
        let url = url::Url::parse(&settings.url)
            .map_err(|_| MailError::Settings("the URL does not parse".to_owned()))?;
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| MailError::Settings("the URL has no host".to_owned()))?
            .to_owned();
        let (tls, default_port) = match url.scheme() {
            "smtp" => (Tls::Opportunistic(tls_parameters(&host)?), 25),
            "smtps" => (Tls::Wrapper(tls_parameters(&host)?), 465),
            other => {
                return Err(MailError::Settings(format!(
                    "scheme `{other}` is not smtp or smtps"
                )));
            }
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(default_port))
            .tls(tls)
            .build();
        Ok(Self { transport, from })
    }

    /// Sends `mail`; returns once the server has accepted it.
    pub async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::Recipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text)
            .map_err(|_| MailError::Message)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, MailError> {
    TlsParameters::new_rustls(host.to_owned())
        .map_err(|_| MailError::Settings("TLS parameters for the host".to_owned()))
}
