//! The site-visitors list and proactive chat in Redis: visitor records, page histories and
//! the list of visitors present (all on the `{r}` slot, next to the visitor's chats), and the
//! invitation scripts. See "Site visitors and invitations" in `docs/design-redis.md`.

use super::{refusal, RedisLayer, Result};
use fred::prelude::*;
use fred::types::sorted_sets::ZSort;
use std::collections::HashMap;

/// A visitor's stored visit: the record's fields and the number of live chats.
#[derive(Debug, Clone, Default)]
pub struct VisitorRecord {
    pub fields: HashMap<String, String>,
    pub chats: i64,
}

/// Outcome of an invitation.
#[derive(Debug, Clone)]
pub struct Invited {
    pub queue: String,
    pub expires_at: i64,
}

/// Outcome of an accepted invitation.
#[derive(Debug, Clone)]
pub struct InvitationAccepted {
    pub agent: String,
    pub agent_name: String,
    pub queue: String,
    pub fresh: bool,
}

/// A `ZRANGE … WITHSCORES` answer as (member, score) pairs, whether it came flat (RESP2) or
/// as pairs (RESP3).
fn scored(v: Value) -> Result<Vec<(String, i64)>> {
    let Value::Array(items) = v else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let Some(first) = it.next() {
        let [member, score]: [Value; 2] = match first {
            Value::Array(pair) => pair
                .try_into()
                .map_err(|_| super::RedisError::Reply("ZRANGE pair".into()))?,
            member => match it.next() {
                Some(score) => [member, score],
                None => return Err(super::RedisError::Reply("ZRANGE odd reply".into())),
            },
        };
        let member: String = member.convert()?;
        let score: f64 = score.convert()?;
        out.push((member, score as i64));
    }
    Ok(out)
}

fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut m = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        m.insert(k, v);
    }
    m
}

impl RedisLayer {
    /// Records a page view (the history keeps the last `max_pages`); returns "arrive" or
    /// "page" and the record.
    #[allow(clippy::too_many_arguments)]
    pub async fn visitor_page(
        &self,
        visitor: &str,
        now: i64,
        url: &str,
        title: &str,
        referrer: &str,
        ip: &str,
        country: &str,
        browser: &str,
        max_pages: usize,
    ) -> Result<(String, VisitorRecord)> {
        let k = &self.keys;
        let (kind, flat, chats): (String, Vec<String>, i64) = self
            .scripts
            .visitor_page
            .evalsha_with_reload(
                self.client(),
                vec![k.visitor(visitor), k.visitor_pages(visitor), k.visitors()],
                vec![
                    k.routing(),
                    visitor.into(),
                    now.to_string(),
                    url.into(),
                    title.into(),
                    referrer.into(),
                    ip.into(),
                    country.into(),
                    max_pages.to_string(),
                    browser.into(),
                ],
            )
            .await?;
        Ok((
            kind,
            VisitorRecord {
                fields: pairs(flat),
                chats,
            },
        ))
    }

    /// Sets fields of a present visitor's record; false when the visitor is gone.
    pub async fn visitor_set(&self, visitor: &str, fields: Vec<(&str, &str)>) -> Result<bool> {
        if fields.is_empty() {
            return Ok(false);
        }
        let args: Vec<String> = fields
            .into_iter()
            .flat_map(|(f, v)| [f.to_string(), v.to_string()])
            .collect();
        let n: i64 = self
            .scripts
            .visitor_set
            .evalsha_with_reload(self.client(), vec![self.keys.visitor(visitor)], args)
            .await?;
        Ok(n == 1)
    }

    /// Shows the pre-chat form's name and e-mail on a present visitor's record, unless the
    /// site vouched for its e-mail; true when the record changed.
    pub async fn visitor_typed(&self, visitor: &str, name: &str, email: &str) -> Result<bool> {
        let n: i64 = self
            .scripts
            .visitor_typed
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.visitor(visitor)],
                vec![name.to_string(), email.to_string()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Moves a present visitor's last_seen on and reads the record in one step; None when
    /// the visitor is not on the site.
    pub async fn visitor_touch(&self, visitor: &str, now: i64) -> Result<Option<VisitorRecord>> {
        let k = &self.keys;
        let v: Value = self
            .scripts
            .visitor_touch
            .evalsha_with_reload(
                self.client(),
                vec![k.visitor(visitor)],
                vec![k.routing(), visitor.into(), now.to_string()],
            )
            .await?;
        let Value::Array(parts) = v else {
            return Ok(None);
        };
        if parts.is_empty() {
            return Ok(None);
        }
        let (flat, chats): (Vec<String>, i64) = Value::Array(parts).convert()?;
        Ok(Some(VisitorRecord {
            fields: pairs(flat),
            chats,
        }))
    }

    /// Forgets a visit; true when the visitor was present.
    pub async fn visitor_leave(&self, visitor: &str) -> Result<bool> {
        let k = &self.keys;
        let n: i64 = self
            .scripts
            .visitor_leave
            .evalsha_with_reload(
                self.client(),
                vec![k.visitor(visitor), k.visitor_pages(visitor), k.visitors()],
                vec![visitor.to_string()],
            )
            .await?;
        Ok(n == 1)
    }

    /// The visitor's record and live chat count (two commands, pipelined); None when the
    /// visitor is not on the site.
    pub async fn visitor_record(&self, visitor: &str) -> Result<Option<VisitorRecord>> {
        let k = &self.keys;
        let c = self.client();
        let (fields, chats) = tokio::join!(
            c.hgetall::<HashMap<String, String>, _>(k.visitor(visitor)),
            c.scard::<i64, _>(k.visitor_chats(visitor)),
        );
        let fields = fields?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(VisitorRecord {
            fields,
            chats: chats?,
        }))
    }

    /// The visitor's page history (JSON pages, oldest first); empty when not on the site.
    pub async fn visitor_pages(&self, visitor: &str) -> Result<Vec<String>> {
        Ok(self
            .client()
            .lrange(self.keys.visitor_pages(visitor), 0, -1)
            .await?)
    }

    /// Up to `limit` visitors now on the site with their visit's start, in the list's order
    /// (start, then id), starting after `after` (None: from the start).
    pub async fn visitors_after(
        &self,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(String, i64)>> {
        // Visitors who arrived in the same millisecond as the cursor are read again and
        // skipped up to it; a little more than a page is asked for so that rarely takes a second read.
        let want = limit + 16;
        let min = match after {
            Some((score, _)) => score as f64,
            None => f64::NEG_INFINITY,
        };
        let mut out = Vec::with_capacity(limit);
        let mut offset = 0i64;
        loop {
            let v: Value = self
                .client()
                .zrange(
                    self.keys.visitors(),
                    min,
                    f64::INFINITY,
                    Some(ZSort::ByScore),
                    false,
                    Some((offset, want as i64)),
                    true,
                )
                .await?;
            let page = scored(v)?;
            let read = page.len();
            for (id, score) in page {
                let seen = match after {
                    Some((s, m)) => score < s || (score == s && id.as_str() <= m),
                    None => false,
                };
                if !seen {
                    out.push((id, score));
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            if read < want {
                return Ok(out);
            }
            offset += read as i64;
        }
    }

    /// Number of visitors now on the site.
    pub async fn visitor_count(&self) -> Result<u64> {
        Ok(self.client().zcard(self.keys.visitors()).await?)
    }

    /// Creates an invited chat. Refused: `gone`, `taken`, `unavailable`.
    #[allow(clippy::too_many_arguments)]
    pub async fn invite(
        &self,
        chat: &str,
        visitor: &str,
        agent: &str,
        default_queue: &str,
        now: i64,
        timeout_ms: u64,
        message: &str,
        agent_max: i64,
    ) -> Result<Invited> {
        let k = &self.keys;
        let (queue, expires_at): (String, i64) = self
            .scripts
            .invite
            .evalsha_with_reload(
                self.client(),
                vec![k.visitor(visitor), k.chat(chat)],
                vec![
                    k.routing(),
                    chat.into(),
                    visitor.into(),
                    agent.into(),
                    default_queue.into(),
                    now.to_string(),
                    timeout_ms.to_string(),
                    message.into(),
                    agent_max.to_string(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok(Invited { queue, expires_at })
    }

    /// The visitor accepts the invitation. Refused: `not_found`, `forbidden`, `wrong_state`.
    pub async fn accept_invitation(
        &self,
        chat: &str,
        visitor: &str,
        now: i64,
        lease_ms: u64,
    ) -> Result<InvitationAccepted> {
        let k = &self.keys;
        let (agent, agent_name, queue, fresh): (String, String, String, i64) = self
            .scripts
            .invite_accept
            .evalsha_with_reload(
                self.client(),
                vec![k.chat(chat), k.visitor(visitor)],
                vec![
                    k.routing(),
                    chat.into(),
                    visitor.into(),
                    now.to_string(),
                    lease_ms.to_string(),
                ],
            )
            .await
            .map_err(refusal)?;
        Ok(InvitationAccepted {
            agent,
            agent_name,
            queue,
            fresh: fresh == 1,
        })
    }

    /// Writes the invitation message as the agent's first transcript entry (idempotent).
    pub async fn chat_invite_message(
        &self,
        chat: &str,
        agent: &str,
        agent_name: &str,
        text: &str,
        at: i64,
    ) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_invite,
                chat,
                vec![agent_name.into(), text.into(), at.to_string(), agent.into()],
            )
            .await?;
        Ok(n == 1)
    }
}
