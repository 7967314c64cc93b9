//! Mailing reports over SMTP (lettre, async on tokio): a short text body
//! with the headline numbers, and every rendered format as an attachment.
//!
//! Transport security (`[smtp] security`): `none` (plain SMTP, for a relay
//! on the same host or a trusted segment), `starttls` (the default: the
//! session must upgrade, or nothing is sent) or `tls` (implicit TLS, port
//! 465). TLS is rustls with the ring provider: ring is the only provider
//! compiled into the server, and lettre takes the process default provider
//! (which the server never installs) or else ring. The limit: lettre
//! builds its own rustls configuration, so the server cannot hand it one;
//! the roots are the webpki roots plus the PEM file of `[smtp] ca`.
//! The password is read from `password_file` at each send (never from the
//! configuration itself).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::ReportError;

/// How the SMTP session is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

impl Security {
    pub fn parse(s: &str) -> Result<Security, ReportError> {
        match s {
            "none" => Ok(Security::None),
            "starttls" => Ok(Security::StartTls),
            "tls" => Ok(Security::Tls),
            _ => Err(ReportError::Invalid(format!(
                "smtp.security {s:?}: expected none, starttls or tls"
            ))),
        }
    }

    /// The usual port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            Security::None | Security::StartTls => 25,
            Security::Tls => 465,
        }
    }
}

/// The effective `[smtp]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The sender, checked to be an address.
    pub from: String,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Extra PEM roots for the relay's certificate.
    pub ca: Option<PathBuf>,
    /// The name given in EHLO.
    pub hello_name: String,
    pub timeout: Duration,
}

/// Checks that `s` is a mail address (with an optional display name).
pub fn check_address(s: &str) -> Result<(), ReportError> {
    s.parse::<Mailbox>()
        .map(|_| ())
        .map_err(|e| ReportError::Invalid(format!("{s:?} is not a mail address: {e}")))
}

/// A rendered report to attach.
#[derive(Debug, Clone)]
pub struct Part {
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

fn mail_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Mail(e.to_string())
}

/// Builds the message (separate from sending, for tests).
pub fn message(
    settings: &SmtpSettings,
    to: &[String],
    subject: &str,
    text: &str,
    parts: &[Part],
) -> Result<Message, ReportError> {
    let mut b = Message::builder()
        .from(settings.from.parse::<Mailbox>().map_err(mail_err)?)
        .subject(subject);
    for t in to {
        b = b.to(t.parse::<Mailbox>().map_err(mail_err)?);
    }
    let mut body = MultiPart::mixed().singlepart(SinglePart::plain(text.to_owned()));
    for p in parts {
        let ct = ContentType::parse(p.content_type).map_err(mail_err)?;
        body = body.singlepart(Attachment::new(p.file_name.clone()).body(p.bytes.clone(), ct));
    }
    b.multipart(body).map_err(mail_err)
}

/// Sends one message with the reports attached to `to`.
pub async fn send(
    settings: &SmtpSettings,
    to: &[String],
    subject: &str,
    text: &str,
    parts: &[Part],
) -> Result<(), ReportError> {
    let msg = message(settings, to, subject, text, parts)?;
    let tls = match settings.security {
        Security::None => Tls::None,
        Security::StartTls | Security::Tls => {
            let mut p = TlsParameters::builder(settings.host.clone());
            if let Some(ca) = &settings.ca {
                let pem = std::fs::read(ca).map_err(|source| ReportError::Write {
                    path: ca.clone(),
                    source,
                })?;
                p = p.add_root_certificate(Certificate::from_pem(&pem).map_err(mail_err)?);
            }
            let p = p.build_rustls().map_err(mail_err)?;
            if settings.security == Security::Tls {
                Tls::Wrapper(p)
            } else {
                Tls::Required(p)
            }
        }
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
        .port(settings.port)
        .tls(tls)
        .hello_name(ClientId::Domain(settings.hello_name.clone()))
        .timeout(Some(settings.timeout));
    if let Some(user) = &settings.username {
        let password = match &settings.password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|source| ReportError::Write {
                    path: f.clone(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => String::new(),
        };
        t = t.credentials(Credentials::new(user.clone(), password));
    }
    t.build().send(msg).await.map_err(mail_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 25,
            security: Security::None,
            from: "trustwatch <tw@example.org>".into(),
            username: None,
            password_file: None,
            ca: None,
            hello_name: "localhost".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn message_carries_every_attachment_with_its_name_and_type() {
        let parts = vec![
            Part {
                file_name: "r_org-A_2025-10-06T0600Z.html".into(),
                content_type: "text/html; charset=utf-8",
                bytes: b"<html></html>".to_vec(),
            },
            Part {
                file_name: "r_org-A_2025-10-06T0600Z.csv".into(),
                content_type: "text/csv; charset=utf-8",
                bytes: b"org\r\n".to_vec(),
            },
        ];
        let m = message(
            &settings(),
            &["a@example.org".into()],
            "Report",
            "hello",
            &parts,
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("filename=\"r_org-A_2025-10-06T0600Z.html\""),
            "{text}"
        );
        assert!(text.contains("filename=\"r_org-A_2025-10-06T0600Z.csv\""));
        assert!(text.contains("Content-Type: text/csv"));
        assert!(text.contains("Subject: Report"));
    }

    #[test]
    fn bad_addresses_and_modes_are_refused() {
        assert!(check_address("not an address").is_err());
        assert!(check_address("Ops <ops@example.org>").is_ok());
        assert!(Security::parse("ssl").is_err());
        assert_eq!(Security::parse("tls").unwrap().default_port(), 465);
    }
}
