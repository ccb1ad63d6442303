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
