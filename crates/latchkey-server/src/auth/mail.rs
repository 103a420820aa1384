//! Confirmation and password-reset messages: kept in the outbox table (unless
//! `outbox = false`) and sent over SMTP when a `[smtp]` table is configured.
//!
//! SMTP delivery runs in a background task: a failure is logged (never with the
//! message body, tokens or the SMTP password) and does not fail the request.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Config, SmtpConfig};
use crate::error::Error;
use crate::store::{OutboxRecord, Store};

/// Where messages go.
#[derive(Debug, Clone)]
pub(crate) struct Mailer {
    outbox: bool,
    smtp: Option<SmtpConfig>,
}

/// SMTP connection / command timeout.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

impl Mailer {
    pub(crate) fn new(config: &Config) -> Self {
        Mailer {
            outbox: config.outbox,
            smtp: config.smtp.clone(),
        }
    }

    /// Store `message` in the outbox and hand it to SMTP. `from` overrides the
    /// `[smtp] from` address.
    pub(crate) async fn send(
        &self,
        store: &dyn Store,
        message: OutboxRecord,
        from: Option<&str>,
    ) -> Result<(), Error> {
        if self.outbox {
            store.add_outbox(&message).await?;
        }
        match &self.smtp {
            Some(smtp) => {
                let smtp = smtp.clone();
                let from = from.unwrap_or(&smtp.from).to_owned();
                tokio::spawn(async move {
                    let kind = message.kind.clone();
                    match deliver(&smtp, &from, message).await {
                        Ok(()) => tracing::info!(kind, host = %smtp.host, "email sent"),
                        Err(e) => {
                            tracing::warn!(kind, host = %smtp.host, error = %e, "email not sent")
                        }
                    }
                });
            }
            None if !self.outbox => {
                tracing::warn!(
                    kind = %message.kind,
                    "message dropped: no [smtp] table and outbox = false"
                );
            }
            None => {}
        }
        Ok(())
    }
}

/// Send one message over SMTP.
async fn deliver(smtp: &SmtpConfig, from: &str, message: OutboxRecord) -> Result<(), String> {
    let email = lettre::Message::builder()
        .from(
            from.parse()
                .map_err(|_| "invalid From address".to_owned())?,
        )
        .to(message
            .to
            .parse()
            .map_err(|_| "invalid recipient address".to_owned())?)
        .subject(message.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(message.body.into_exposed())
        .map_err(|e| format!("cannot build message: {e}"))?;
    let builder = match smtp.tls.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| format!("SMTP TLS setup failed: {e}"))?,
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| format!("SMTP STARTTLS setup failed: {e}"))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    builder
        .build()
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP delivery failed: {e}"))
}

/// `base` with `?token=..&tokenId=..` appended (or `&...` when it has a query).
pub(crate) fn link(base: &str, token: &str, token_id: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}token={token}&tokenId={token_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert_eq!(
            link("https://a.b/confirm", "t", "i"),
            "https://a.b/confirm?token=t&tokenId=i"
        );
        assert_eq!(
            link("https://a.b/c?x=1", "t", "i"),
            "https://a.b/c?x=1&token=t&tokenId=i"
        );
    }
}
