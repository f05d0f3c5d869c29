//! The notification stream (`{m}` slot): one job per offline message to announce by e-mail,
//! read by a consumer group of all nodes, claimed from a dead node after an idle time, and
//! acknowledged only once the SMTP server took the message. Pairs with `chat::mail`.

use super::{RedisLayer, Result};
use fred::prelude::*;

const GROUP: &str = "mail";

/// A notification job: its stream id and the offline message it announces.
#[derive(Debug, Clone, PartialEq)]
pub struct MailJob {
    pub id: String,
    /// The offline message's `uid`.
    pub message: String,
    /// When the job was enqueued (ms, from the stream id).
    pub enqueued: i64,
}

impl MailJob {
    fn new(id: String, message: String) -> MailJob {
        let enqueued = id
            .split('-')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        MailJob {
            id,
            message,
            enqueued,
        }
    }
}

impl RedisLayer {
    /// Enqueues the notification of offline message `uid`.
    pub async fn enqueue_mail(&self, uid: &str) -> Result<()> {
        self.add_job(&self.keys.mail_jobs(), "message", uid).await
    }

    /// New jobs for this consumer. Blocks up to `block_ms` on the blocking connection.
    pub async fn read_mail_jobs(
        &self,
        consumer: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<MailJob>> {
        let stream = self.keys.mail_jobs();
        Ok(self
            .read_group(&stream, GROUP, consumer, count, block_ms, "message")
            .await?
            .into_iter()
            .map(|(id, m)| MailJob::new(id, m))
            .collect())
    }

    /// Takes over jobs left unacknowledged for `idle_ms` (a dead node's, or one the SMTP
    /// server refused, retried).
    pub async fn claim_stale_mail_jobs(
        &self,
        consumer: &str,
        idle_ms: u64,
        count: usize,
    ) -> Result<Vec<MailJob>> {
        Ok(self
            .claim_group(
                &self.keys.mail_jobs(),
                GROUP,
                consumer,
                idle_ms,
                count,
                "message",
            )
            .await?
            .into_iter()
            .map(|(id, m)| MailJob::new(id, m))
            .collect())
    }

    /// Acknowledges a finished job and removes it from the stream.
    pub async fn ack_mail_job(&self, id: &str) -> Result<()> {
        let _: i64 = self
            .client()
            .xack(self.keys.mail_jobs(), GROUP, id.to_string())
            .await?;
        let _: i64 = self
            .client()
            .xdel(self.keys.mail_jobs(), id.to_string())
            .await?;
        Ok(())
    }
}
