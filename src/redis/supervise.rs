//! What supervisors need from Redis: taking a chat over (one routing script) and the reads
//! behind the live monitor. The monitor's reads are plain commands sent together (fred
//! pipelines concurrent commands on its connections), one round of them per snapshot, shared by
//! every supervisor watching on the node (`chat::monitor`).

use super::{refusal, RedisLayer, Result};
use fred::prelude::*;
use futures_util::future::try_join_all;
use std::collections::HashMap;

/// A window of the queue figures: one hour.
const HOUR_MS: i64 = 3_600_000;

/// The raw reads of one monitor snapshot.
#[derive(Debug, Default)]
pub struct MonitorRead {
    /// Agent id -> its routing record fields (`status`, `load`, `max`, `unroutable`).
    pub agents: HashMap<i64, HashMap<String, String>>,
    /// Chat id -> its routing record (empty when the chat is gone).
    pub chats: Vec<(String, HashMap<String, String>)>,
    /// Chat id -> when the visitor last wrote (ms).
    pub visitor_last: HashMap<String, i64>,
    /// Queue -> (waiting chat ids oldest first (at most `max_chats`), waiting in all).
    pub waiting: HashMap<String, (Vec<String>, u64)>,
    /// Queue -> request-to-accept times (ms) of the last hour.
    pub accepted: HashMap<String, Vec<u64>>,
    /// Queue -> missed offers in the last hour.
    pub missed: HashMap<String, u64>,
    /// Distinct chats found before the cut to `max_chats`.
    pub total_chats: u64,
}

impl RedisLayer {
    /// Moves a running chat to supervisor `to`; returns `(previous agent, queue)`.
    pub async fn take_over(
        &self,
        chat: &str,
        to: &str,
        now: i64,
        lease_ms: u64,
    ) -> Result<(String, String)> {
        self.on_chat(
            &self.scripts.take_over,
            chat,
            vec![to.into(), now.to_string(), lease_ms.to_string()],
        )
        .await
        .map_err(refusal)
    }

    /// Queues that have ever had a request (`queues` set of the routing scripts).
    pub async fn known_queues(&self) -> Result<Vec<String>> {
        Ok(self.client().smembers(self.keys.queues()).await?)
    }

    /// Everything one monitor snapshot shows, for these agents and queues: at most
    /// `max_chats` chat records are read (waiting ones first). Returns the records read and,
    /// in `waiting`, how many wait in all.
    pub async fn monitor_read(
        &self,
        agents: &[i64],
        queues: &[String],
        now: i64,
        max_chats: usize,
    ) -> Result<MonitorRead> {
        let c = self.client();
        let k = &self.keys;
        let since = now - HOUR_MS;
        let agent_reads = try_join_all(agents.iter().map(|a| async move {
            let key = k.agent(&a.to_string());
            let (fields, chats): (Vec<Option<String>>, Vec<String>) = tokio::try_join!(
                c.hmget(key, vec!["status", "load", "max", "unroutable"]),
                c.smembers(k.agent_chats(&a.to_string())),
            )?;
            Ok::<_, fred::error::Error>((*a, fields, chats))
        }));
        let queue_reads =
            try_join_all(
                queues.iter().map(|q| async move {
                    let (waiting, total, accepted, missed): (Vec<String>, u64, Vec<String>, u64) =
                        tokio::try_join!(
                            c.zrange(
                                k.queue(q),
                                0,
                                max_chats as i64 - 1,
                                None,
                                false,
                                None,
                                false
                            ),
                            c.zcard(k.queue(q)),
                            c.zrangebyscore(k.accepted(q), since, "+inf", false, None),
                            c.zcount(k.missed(q), since as f64, f64::INFINITY),
                        )?;
                    Ok::<_, fred::error::Error>((q.clone(), waiting, total, accepted, missed))
                }),
            );
        let (agent_reads, queue_reads) = tokio::try_join!(agent_reads, queue_reads)?;
        let mut read = MonitorRead::default();
        let mut ids: Vec<String> = Vec::new();
        for (q, waiting, total, accepted, missed) in queue_reads {
            ids.extend(waiting.iter().cloned());
            let waits = accepted
                .iter()
                .filter_map(|m| m.rsplit_once(':').and_then(|(_, ms)| ms.parse().ok()))
                .collect();
            read.accepted.insert(q.clone(), waits);
            read.missed.insert(q.clone(), missed);
            read.waiting.insert(q, (waiting, total));
        }
        const AGENT_FIELDS: [&str; 4] = ["status", "load", "max", "unroutable"];
        for (a, fields, chats) in agent_reads {
            let record = AGENT_FIELDS
                .iter()
                .zip(fields)
                .filter_map(|(f, v)| v.map(|v| (f.to_string(), v)))
                .collect();
            read.agents.insert(a, record);
            ids.extend(chats);
        }
        // Waiting requests first, then the agents' chats; each read once, at most `max_chats`.
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        let mut read = MonitorRead {
            total_chats: ids.len() as u64,
            ..read
        };
        ids.truncate(max_chats.max(1));
        let chats = try_join_all(ids.into_iter().map(|id| async move {
            let (record, last): (HashMap<String, String>, Option<i64>) =
                tokio::try_join!(c.hgetall(k.chat(&id)), c.hget(k.meta(&id), "vlast"),)?;
            Ok::<_, fred::error::Error>((id, record, last))
        }))
        .await?;
        for (id, record, last) in chats {
            if let Some(t) = last {
                read.visitor_last.insert(id.clone(), t);
            }
            read.chats.push((id, record));
        }
        Ok(read)
    }
}
