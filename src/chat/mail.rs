//! The offline-message notification worker every node runs when `mail` is configured: reads
//! jobs from the notification stream (consumer group of all nodes), sends one e-mail per new
//! offline message through SMTP (lettre), and acknowledges only after the server took it.
//! Jobs of a dead node, or ones the server refused, are claimed again after
//! `mail.claim_idle_ms`: at least once, and a message marked notified is not sent twice.
//! `transport` is shared with the transcript e-mails of `after_chat`.

use super::Service;
use crate::redis::MailJob;
use crate::store::OfflineMessage;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A job whose message was never stored (the node died between the job and the insert, or
/// the insert failed) is dropped after this long.
const ORPHAN_AFTER_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
enum MailError {
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("{0}")]
    Other(String),
}

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let m = &svc.settings.mail;
    if !m.enabled() {
        return;
    }
    let transport = match transport(m) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "mail.smtp_url is unusable; no notifications");
            return;
        }
    };
    let consumer = svc.node.clone();
    let claim_every = Duration::from_millis((m.claim_idle_ms / 2).max(100));
    let mut last_claim = tokio::time::Instant::now() - claim_every;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut jobs = Vec::new();
        if last_claim.elapsed() >= claim_every {
            last_claim = tokio::time::Instant::now();
            match svc
                .redis
                .claim_stale_mail_jobs(&consumer, m.claim_idle_ms, 16)
                .await
            {
                Ok(j) => jobs.extend(j),
                Err(e) => tracing::warn!(error = %e, "claiming mail jobs failed"),
            }
        }
        let read = tokio::select! {
            r = svc.redis.read_mail_jobs(&consumer, 16, 1000) => r,
            _ = stop.changed() => return,
        };
        match read {
            Ok(j) => jobs.extend(j),
            Err(e) => {
                svc.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "reading mail jobs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        for job in jobs {
            handle(&svc, &transport, &job).await;
        }
    }
}

/// The SMTP transport of `mail.smtp_url`, each command bounded by `mail.timeout_ms`.
pub(crate) fn transport(
    m: &crate::config::Mail,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(&m.smtp_url)?
        .timeout(Some(Duration::from_millis(m.timeout_ms)))
        .build())
}

async fn handle(svc: &Service, transport: &AsyncSmtpTransport<Tokio1Executor>, job: &MailJob) {
    let message = match svc.store.offline_message(&job.message).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "mail job: store unavailable; retried later");
            return;
        }
    };
    let Some(message) = message else {
        if super::now_ms() - job.enqueued > ORPHAN_AFTER_MS {
            let _ = svc.redis.ack_mail_job(&job.id).await;
        }
        return;
    };
    if message.notified_at.is_none() {
        match send(svc, transport, &message).await {
            Ok(()) => {
                svc.metrics.mail.with_label_values(&["sent"]).inc();
                if let Err(e) = svc.store.mark_offline_notified(&message.uid).await {
                    tracing::warn!(error = %e, "notification sent but not marked");
                }
            }
            Err(e) => {
                svc.metrics.mail.with_label_values(&["failed"]).inc();
                tracing::warn!(error = %e, message = %message.uid, "notification not sent; retried after mail.claim_idle_ms");
                return;
            }
        }
    }
    if let Err(e) = svc.redis.ack_mail_job(&job.id).await {
        tracing::warn!(error = %e, "mail job not acknowledged; it may be sent again");
    }
}

async fn send(
    svc: &Service,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    m: &OfflineMessage,
) -> Result<(), MailError> {
    let cfg = &svc.settings.mail;
    let who = if m.name.is_empty() {
        "A visitor"
    } else {
        m.name.as_str()
    };
    let subject: String = format!("[{}] Message from {}", m.queue, who)
        .chars()
        .filter(|c| !c.is_control())
        .take(150)
        .collect();
    let body = format!(
        "{who} left a message in queue {queue} while nobody was available.\n\n\
         Name: {name}\nE-mail (as typed, not verified): {email}\nPage: {page}\n\n{text}\n\n\
         Claim it in the console's inbox so no one else answers it twice.\n",
        queue = m.queue,
        name = m.name,
        email = m.email,
        page = m.page_url,
        text = m.message,
    );
    let mut b = Message::builder()
        .from(cfg.from.parse()?)
        .to(cfg.notify_to.parse()?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    // Replying reaches the visitor; the address is only as good as what they typed.
    if let Ok(addr) = m.email.parse() {
        b = b.reply_to(addr);
    }
    let email = b.body(body)?;
    let response = transport.send(email).await?;
    if !response.is_positive() {
        return Err(MailError::Other(format!("refused: {}", response.code())));
    }
    Ok(())
}
