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
