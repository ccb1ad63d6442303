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
//!
//! Services send from background tasks, one per message, so a mail server
//! that hangs must not gather them: a process holds at most
//! [`MAX_SENDING`] SMTP sessions at once, each bounded by [`SEND_TIMEOUT`]
//! in all, and at most [`MAX_IN_LINE`] messages wait or are being sent —
//! beyond, a message is refused at once ([`MailError::Busy`]) instead of
//! waiting with its task, socket and memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Most SMTP sessions one process holds at once (every [`Mailer`] cloned
/// from one [`Mailer::new`] shares them).
pub const MAX_SENDING: usize = 4;
/// Most messages waiting for a session or being sent; a message beyond is
/// refused with [`MailError::Busy`].
pub const MAX_IN_LINE: usize = 1_024;
/// Longest a message may take from connecting to the server's acceptance.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the server's answer to one command (and to connect).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Too many messages wait for the server already ([`MAX_IN_LINE`]):
    /// this one is not sent.
    #[error("too many messages wait for the mail server")]
    Busy,
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
    line: Arc<Line>,
}

/// The messages of one mailer and its clones: sessions and places in line.
struct Line {
    sessions: tokio::sync::Semaphore,
    in_line: AtomicUsize,
}

/// A message's place in line, given up when it is sent, fails or is dropped.
struct Place<'line>(&'line Line);

impl Line {
    fn enter(&self) -> Option<Place<'_>> {
        let ahead = self.in_line.fetch_add(1, Ordering::SeqCst);
        let place = Place(self);
        (ahead < MAX_IN_LINE).then_some(place)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.in_line.fetch_sub(1, Ordering::SeqCst);
    }
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
            .timeout(Some(COMMAND_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from,
            line: Arc::new(Line {
                sessions: tokio::sync::Semaphore::new(MAX_SENDING),
                in_line: AtomicUsize::new(0),
            }),
        })
    }

    /// Sends `mail`; returns once the server has accepted it, or with
    /// [`MailError::Busy`] at once when [`MAX_IN_LINE`] messages are ahead.
    pub async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let to: Mailbox = mail.to.parse().map_err(|_| MailError::Recipient)?;
        let builder = Message::builder().from(self.from.clone()).to(to);
        let builder = if mail.subject.contains("=?") {
            builder.raw_header(encoded_subject(mail.subject))
        } else {
            builder.subject(mail.subject)
        };
        let message = builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text)
            .map_err(|_| MailError::Message)?;
        let _place = self.line.enter().ok_or(MailError::Busy)?;
        // The semaphore is never closed.
        let _session = self
            .line
            .sessions
            .acquire()
            .await
            .map_err(|_| MailError::Busy)?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(MailError::from),
            Err(_) => Err(MailError::Smtp(SmtpFailure {
                kind: "timeout",
                code: None,
            })),
        }
    }
}

/// Most bytes of text in one encoded word: 45 bytes are 60 in base64, and
/// with `=?utf-8?b?` and `?=` the word stays within RFC 2047's 75.
const ENCODED_WORD_BYTES: usize = 45;

/// The subject as one or more RFC 2047 encoded words. lettre writes a word
/// of plain ASCII as it is, so a subject word that itself reads as an
/// encoded word (a studio named "=?utf-8?b?4oCu?=") would be decoded by the
/// reader's mail program into characters the subject never held — a
/// right-to-left override, a line break — past every check of the text. A
/// subject holding `=?` is therefore encoded whole, and its own `=?` stays
/// text.
fn encoded_subject(subject: String) -> HeaderValue {
    use base64::Engine as _;
    let mut words = Vec::new();
    let mut rest = subject.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(ENCODED_WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        words.push(format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(chunk)
        ));
        rest = tail;
    }
    HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str("Subject"),
        subject,
        words.join("\r\n "),
    )
}

fn tls_parameters(host: &str) -> Result<TlsParameters, MailError> {
    TlsParameters::new_rustls(host.to_owned())
        .map_err(|_| MailError::Settings("TLS parameters for the host".to_owned()))
}
