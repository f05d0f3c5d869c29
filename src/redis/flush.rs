//! The flush stream (`{f}` slot): the consumer group, enqueued jobs, blocking reads, claims of
//! stale jobs and acknowledgements. Pairs with `chat::flush`.

use super::{RedisLayer, Result};
use fred::prelude::*;
use fred::types::streams::XReadResponse;

impl RedisLayer {
    pub(super) async fn ensure_flush_group(&self) -> Result<()> {
        self.ensure_group(&self.keys.flush_jobs(), "flush").await
    }

    /// Creates a stream's consumer group (and the stream) unless it exists.
    pub(super) async fn ensure_group(&self, stream: &str, group: &str) -> Result<()> {
        let r: std::result::Result<String, fred::error::Error> =
            self.client().xgroup_create(stream, group, "0", true).await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Entries of a job stream left unacknowledged for `idle_ms` by any consumer (a dead
    /// node's, or a failed attempt), taken over by this one: (entry id, value of `field`).
    /// Creates the group when it is missing (then there is nothing to take over).
    pub(super) async fn claim_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        idle_ms: u64,
        count: usize,
        field: &str,
    ) -> Result<Vec<(String, String)>> {
        let v: std::result::Result<Value, _> = self
            .client()
            .xautoclaim(
                stream,
                group,
                consumer,
                idle_ms,
                "0-0",
                Some(count as u64),
                false,
            )
            .await;
        match v {
            Ok(v) => Ok(claimed_entries(v, field)),
            Err(e) if e.details().contains("NOGROUP") => {
                self.ensure_group(stream, group).await?;
                Ok(vec![])
            }
            Err(e) => Err(e.into()),
        }
    }

    /// New entries of a job stream for this consumer: (entry id, value of `field`). Blocks up
    /// to `block_ms` on the blocking connection; creates the group when it is missing.
    pub(super) async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block_ms: u64,
        field: &str,
    ) -> Result<Vec<(String, String)>> {
        // A read that times out answers nil, which is no map: take the raw value first.
        let r: std::result::Result<Value, _> = self
            .blocking
            .xreadgroup(
                group,
                consumer,
                Some(count as u64),
                Some(block_ms),
                false,
                stream,
                ">",
            )
            .await;
        let map: XReadResponse<String, String, String, String> = match r {
            Ok(Value::Null) => return Ok(vec![]),
            Ok(v) => v.into_xread_response()?,
            Err(e) if e.details().contains("NOGROUP") => {
                self.ensure_group(stream, group).await?;
                return Ok(vec![]);
            }
            Err(e) => return Err(e.into()),
        };
        Ok(map
            .into_values()
            .flatten()
            .map(|(id, mut f)| (id, f.remove(field).unwrap_or_default()))
            .collect())
    }

    pub async fn enqueue_flush(&self, chat: &str) -> Result<()> {
        self.add_job(&self.keys.flush_jobs(), "chat", chat).await
    }

    /// Appends a job to a job stream: one entry whose `field` holds `value`.
    pub(super) async fn add_job(&self, stream: &str, field: &str, value: &str) -> Result<()> {
        let _: String = self
            .client()
            .xadd(stream, false, None, "*", vec![(field, value)])
            .await?;
        Ok(())
    }

    /// New flush jobs for this consumer: (job id, chat id). Blocks up to `block_ms`.
    pub async fn read_flush_jobs(
        &self,
        consumer: &str,
        count: usize,
        block_ms: u64,
    ) -> Result<Vec<(String, String)>> {
        let stream = self.keys.flush_jobs();
        self.read_group(&stream, "flush", consumer, count, block_ms, "chat")
            .await
    }

    /// Takes over jobs another consumer left unacknowledged for `idle_ms`.
    pub async fn claim_stale_flush_jobs(
        &self,
        consumer: &str,
        idle_ms: u64,
        count: usize,
    ) -> Result<Vec<(String, String)>> {
        self.claim_group(
            &self.keys.flush_jobs(),
            "flush",
            consumer,
            idle_ms,
            count,
            "chat",
        )
        .await
    }

    /// Acknowledges finished jobs and removes them from the stream: two commands for a batch.
    pub async fn ack_flush_jobs(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: i64 = self
            .client()
            .xack(self.keys.flush_jobs(), "flush", ids.to_vec())
            .await?;
        let _: i64 = self
            .client()
            .xdel(self.keys.flush_jobs(), ids.to_vec())
            .await?;
        Ok(())
    }

    /// Jobs waiting or unacknowledged (for metrics).
    pub async fn flush_backlog(&self) -> Result<u64> {
        Ok(self.client().xlen(self.keys.flush_jobs()).await?)
    }
}

/// The entries an XAUTOCLAIM reply holds: (stream id, value of `field`).
pub(super) fn claimed_entries(v: Value, field: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Value::Array(parts) = v else {
        return out;
    };
    let Some(Value::Array(entries)) = parts.get(1) else {
        return out;
    };
    for e in entries {
        let Value::Array(pair) = e else { continue };
        let id = pair.first().and_then(|v| v.as_string()).unwrap_or_default();
        let mut value = String::new();
        if let Some(Value::Array(fields)) = pair.get(1) {
            for kv in fields.chunks(2) {
                if kv.len() == 2 && kv[0].as_string().as_deref() == Some(field) {
                    value = kv[1].as_string().unwrap_or_default();
                }
            }
        }
        if !id.is_empty() {
            out.push((id, value));
        }
    }
    out
}
