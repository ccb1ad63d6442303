//! The mailer against the test kit's SMTP sink: real SMTP over a socket.

use fitflow_mail::{Mail, MailError, MailSettings, Mailer};
use fitflow_testkit::SmtpSink;

const FROM: &str = "FitFlow <no-reply@fitflow.test>";

fn verification_mail(to: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: "Verify your FitFlow email".into(),
        text: "Open https://app.fitflow.test/verify?token=secret-token-123 within 48 hours.\n"
            .into(),
    }
}

#[tokio::test]
async fn a_mail_reaches_the_smtp_server_with_its_sender_recipient_subject_and_text() {
    fitflow_server::install_crypto_provider();
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&MailSettings {
        url: sink.url(),
        from: FROM.into(),
    })
    .expect("a mailer");
    mailer
        .send(verification_mail("ana@example.com"))
        .await
        .expect("sent to a server that offers no STARTTLS");

    let received = sink.received_by("ana@example.com");
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.from, "no-reply@fitflow.test");
    assert_eq!(
        mail.header("subject").as_deref(),
        Some("Verify your FitFlow email")
    );
    assert!(
        mail.header("from")
            .unwrap_or_default()
            .contains("no-reply@fitflow.test")
    );
    assert!(
        mail.text().contains("token=secret-token-123"),
        "{}",
        mail.data
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_neither_the_recipient_nor_the_text() {
    fitflow_server::install_crypto_provider();
    let closed_port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let mailer = Mailer::new(&MailSettings {
        url: format!("smtp://127.0.0.1:{closed_port}"),
        from: FROM.into(),
    })
    .expect("a mailer");
    let error = mailer
        .send(verification_mail("ana@example.com"))
        .await
        .expect_err("nobody listens");
    let printed = format!("{error} {error:?}");
    assert!(matches!(error, MailError::Smtp(_)), "{printed}");
    assert!(!printed.contains("ana@example.com"), "{printed}");
    assert!(!printed.contains("secret-token"), "{printed}");
}

#[test]
fn settings_with_another_scheme_or_a_bad_sender_are_refused_and_never_print_the_url() {
    for (url, from) in [
        ("http://mail.example.com", FROM),
        ("smtp://", FROM),
        ("smtp://mail.example.com", "not a mailbox"),
    ] {
        let refused = Mailer::new(&MailSettings {
            url: url.into(),
            from: from.into(),
        });
        assert!(
            matches!(refused, Err(MailError::Settings(_))),
            "{url} {from}"
        );
    }
    let settings = MailSettings {
        url: "smtps://user:password@mail.example.com".into(),
        from: FROM.into(),
    };
    assert!(!format!("{settings:?}").contains("password"));
    assert!(Mailer::new(&settings).is_ok());
}

#[tokio::test]
async fn a_bad_recipient_is_refused_before_any_connection() {
    fitflow_server::install_crypto_provider();
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&MailSettings {
        url: sink.url(),
        from: FROM.into(),
    })
    .expect("a mailer");
    let refused = mailer.send(verification_mail("not an address")).await;
    assert!(matches!(refused, Err(MailError::Recipient)));
    assert!(sink.received().is_empty());
}

/// A server that greets, then refuses every recipient with a reply quoting
/// it, as real servers do ("550 5.1.1 <ana@example.com>: no such user").
async fn server_refusing_recipients() -> u16 {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (reader, mut writer) = stream.into_split();
                let mut lines = BufReader::new(reader).lines();
                writer.write_all(b"220 refusing ESMTP\r\n").await.ok();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply = if upper.starts_with("EHLO") {
                        "250 refusing\r\n".to_owned()
                    } else if let Some(recipient) = upper
                        .starts_with("RCPT TO:")
                        .then(|| line["RCPT TO:".len()..].trim().to_owned())
                    {
                        format!("550 5.1.1 {recipient}: no such user here\r\n")
                    } else if upper.starts_with("QUIT") {
                        writer.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else {
                        "250 ok\r\n".to_owned()
                    };
                    if writer.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_refusal_quoting_the_recipient_is_an_error_that_does_not() {
    fitflow_server::install_crypto_provider();
    let port = server_refusing_recipients().await;
    let mailer = Mailer::new(&MailSettings {
        url: format!("smtp://127.0.0.1:{port}"),
        from: FROM.into(),
    })
    .expect("a mailer");
    let error = mailer
        .send(verification_mail("ana@example.com"))
        .await
        .expect_err("the server refuses the recipient");
    let printed = format!("{error} {error:?}");
    assert!(
        matches!(&error, MailError::Smtp(failure) if failure.kind == "permanent"
            && failure.code.as_deref() == Some("550")),
        "{printed}"
    );
    assert!(!printed.contains("ana@example.com"), "{printed}");
    assert!(!printed.contains("no such user"), "{printed}");
    assert!(
        std::error::Error::source(&error).is_none(),
        "no source to print"
    );
}

#[tokio::test]
async fn a_subject_holding_an_encoded_word_reaches_the_reader_as_the_same_text() {
    fitflow_server::install_crypto_provider();
    let sink = SmtpSink::start().await;
    let mailer = Mailer::new(&MailSettings {
        url: sink.url(),
        from: FROM.into(),
    })
    .expect("a mailer");
    // "=?utf-8?b?4oCu?=" is how a right-to-left override would be written
    // in a header: sent as it is, the reader's mail program decodes it.
    let subject = "FitFlow: Pulse =?utf-8?b?4oCu?= and =?UTF-8?Q?=0D=0A?= invites you";
    mailer
        .send(Mail {
            to: "ana@example.com".into(),
            subject: subject.into(),
            text: "Hello.\n".into(),
        })
        .await
        .expect("sent");

    let received = sink.received_by("ana@example.com");
    let header = received[0].header("subject").expect("a subject");
    assert!(!header.contains("4oCu"), "{header}");
    assert!(!header.contains("=0D=0A"), "{header}");
    use base64::Engine as _;
    let mut decoded = Vec::new();
    for word in header.split(' ') {
        let text = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|word| word.strip_suffix("?="))
            .unwrap_or_else(|| panic!("an encoded word: {header}"));
        decoded.extend(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64"),
        );
    }
    assert_eq!(String::from_utf8(decoded).expect("UTF-8"), subject);
}

/// A server that accepts connections and never says a word; returns its
/// port and the most connections it held open at once.
async fn silent_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let open = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let most_open = Arc::clone(&most);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now_open, Ordering::SeqCst);
            let open = Arc::clone(&open);
            tokio::spawn(async move {
                let mut buffer = [0_u8; 256];
                while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, most_open)
}

#[tokio::test]
async fn a_server_that_never_answers_gets_few_sessions_and_a_full_line_refuses_at_once() {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    fitflow_server::install_crypto_provider();
    let (port, most_open) = silent_server().await;
    let mailer = Mailer::new(&MailSettings {
        url: format!("smtp://127.0.0.1:{port}"),
        from: FROM.into(),
    })
    .expect("a mailer");

    let waiting: Vec<_> = (0..fitflow_mail::MAX_IN_LINE)
        .map(|index| {
            let mailer = mailer.clone();
            tokio::spawn(async move {
                mailer
                    .send(verification_mail(&format!("user{index}@example.com")))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(most_open.load(Ordering::SeqCst) <= fitflow_mail::MAX_SENDING);

    let started = Instant::now();
    let refused = mailer.send(verification_mail("late@example.com")).await;
    assert!(matches!(refused, Err(MailError::Busy)), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // A session the server never answers ends, as a failure.
    let first = waiting.into_iter().next().expect("a send");
    let outcome = tokio::time::timeout(fitflow_mail::SEND_TIMEOUT + Duration::from_secs(5), first)
        .await
        .expect("bounded")
        .expect("joined");
    assert!(matches!(&outcome, Err(MailError::Smtp(_))), "{outcome:?}");
    assert!(most_open.load(Ordering::SeqCst) <= fitflow_mail::MAX_SENDING);
}
