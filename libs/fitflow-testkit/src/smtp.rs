//! An in-process SMTP sink: a plain SMTP server on a loopback port that
//! accepts every message and keeps it in memory, so tests read the mail a
//! service sent instead of mocking the mailer. It offers no STARTTLS, so a
//! client configured for opportunistic TLS sends in the clear, as it would
//! to the dev stack's sink. A recipient whose address starts with
//! [`GREYLISTED`] is deferred (`450`, try again later) every time, as a
//! greylisting or full mailbox would, so a test can poison one notice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Longest line the sink reads; longer ones end the connection.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// The start of a recipient address the sink always defers with a `450`.
pub const GREYLISTED: &str = "greylisted-";

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers, blank line, body), with
    /// dot-stuffing undone and CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = self.data.split_once("\r\n\r\n")?;
        let mut found: Option<String> = None;
        for line in headers.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = found.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.trim().eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_owned());
            }
        }
        found
    }

    /// The body: everything after the blank line that ends the headers.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// The body as the reader sees it: quoted-printable decoded when the
    /// message says so (mailers use it for lines longer than 76
    /// characters, such as a link with a token), as is otherwise.
    pub fn text(&self) -> String {
        let quoted_printable = self
            .header("content-transfer-encoding")
            .is_some_and(|encoding| encoding.eq_ignore_ascii_case("quoted-printable"));
        if quoted_printable {
            decode_quoted_printable(self.body())
        } else {
            self.body().to_owned()
        }
    }
}

/// RFC 2045 quoted-printable: `=` at a line end joins lines, `=XX` is a byte.
fn decode_quoted_printable(encoded: &str) -> String {
    let joined = encoded.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let escaped = (byte == b'=')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(value) => {
                decoded.push(value);
                index += 3;
            }
            None => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A running sink; it stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("the sink's address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&received);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    // A client that breaks the protocol only loses its own session.
                    let _ = serve(stream, store).await;
                });
            }
        });
        Self {
            port,
            received,
            server,
        }
    }

    /// `smtp://127.0.0.1:<port>`, for a mailer's settings.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The messages received so far for `recipient` (case-insensitive).
    pub fn received_by(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|mail| mail.to.iter().any(|to| to.eq_ignore_ascii_case(recipient)))
            .collect()
    }

    /// Waits (up to `timeout`) until `count` messages for `recipient` have
    /// arrived and returns them; panics with what did arrive otherwise.
    pub async fn wait_for(
        &self,
        recipient: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedMail> {
        crate::eventually(
            &format!("{count} mail(s) for {recipient}"),
            timeout,
            async || self.received_by(recipient).len() >= count,
        )
        .await;
        self.received_by(recipient)
    }
}

/// One SMTP session: greeting, then commands until QUIT or EOF.
async fn serve(stream: TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer
        .write_all(b"220 fitflow-testkit ESMTP sink\r\n")
        .await?;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-fitflow-testkit\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") {
            b"250 fitflow-testkit\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&line["MAIL FROM:".len()..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let recipient = address(&line["RCPT TO:".len()..]);
            if recipient.to_ascii_lowercase().starts_with(GREYLISTED) {
                b"450 4.2.0 greylisted, try again later\r\n"
            } else {
                to.push(recipient);
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let Some(line) = read_line(&mut reader).await? else {
                    return Ok(());
                };
                if line == "." {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
                data.push_str("\r\n");
            }
            store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(ReceivedMail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
            b"250 OK queued\r\n"
        } else if upper.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("QUIT") {
            writer.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        writer.write_all(reply).await?;
    }
}

/// One line without its line end; `None` at EOF or for an over-long line.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    let read = reader.read_until(b'\n', &mut bytes).await?;
    if read == 0 || bytes.len() > MAX_LINE_BYTES {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&bytes);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// `<a@b>` (with optional parameters after it) → `a@b`.
fn address(argument: &str) -> String {
    let argument = argument.trim();
    let inside = argument
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map_or(argument, |(address, _)| address);
    inside.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_by_name_in_any_case_and_unfolded() {
        let mail = ReceivedMail {
            from: "a@example.com".into(),
            to: vec!["b@example.com".into()],
            data: "Subject: Verify\r\n your email\r\nTo: b@example.com\r\n\r\nhello\r\n".into(),
        };
        assert_eq!(mail.header("subject").as_deref(), Some("Verify your email"));
        assert_eq!(mail.header("TO").as_deref(), Some("b@example.com"));
        assert_eq!(mail.header("From"), None);
        assert_eq!(mail.body(), "hello\r\n");
    }

    #[test]
    fn a_quoted_printable_body_is_decoded_for_reading() {
        let mail = ReceivedMail {
            from: String::new(),
            to: vec![],
            data: "Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                   token=3Dabc long li=\r\nne Zo=C3=AB\r\n"
                .into(),
        };
        assert_eq!(mail.text(), "token=abc long line Zoë\r\n");
    }

    #[test]
    fn envelope_addresses_lose_their_brackets_and_parameters() {
        assert_eq!(address(" <a@example.com> SIZE=100"), "a@example.com");
        assert_eq!(address("b@example.com"), "b@example.com");
    }
}
