//! The site-visitors list and proactive chat in Redis: visitor records, page histories and
//! the list of visitors present (all on the `{r}` slot, next to the visitor's chats), and the
//! invitation scripts. See "Site visitors and invitations" in `docs/design-redis.md`.

use super::{refusal, RedisLayer, Result};
use fred::prelude::*;
use std::collections::HashMap;

/// A visitor's stored visit: the record's fields, page history (JSON, oldest first) and the
/// number of live chats.
#[derive(Debug, Clone, Default)]
pub struct VisitorRecord {
    pub fields: HashMap<String, String>,
    pub pages: Vec<String>,
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

fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut m = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        m.insert(k, v);
    }
    m
}

impl RedisLayer {
    /// Records a page view; returns "arrive" or "page" and the record (for "page" only the new
    /// page in `pages`).
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
        max_pages: usize,
    ) -> Result<(String, VisitorRecord)> {
        let k = &self.keys;
        let (kind, flat, pages, chats): (String, Vec<String>, Vec<String>, i64) = self
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
                ],
            )
            .await?;
        Ok((
            kind,
            VisitorRecord {
                fields: pairs(flat),
                pages,
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
                vec![k.visitor(visitor), k.visitor_pages(visitor), k.visitors()],
                vec![k.routing(), visitor.into(), now.to_string()],
            )
            .await?;
        let Value::Array(parts) = v else {
            return Ok(None);
        };
        if parts.is_empty() {
            return Ok(None);
        }
        let (flat, pages, chats): (Vec<String>, Vec<String>, i64) =
            Value::Array(parts).convert()?;
        Ok(Some(VisitorRecord {
            fields: pairs(flat),
            pages,
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

    /// The visitor's record, page history and live chat count (three commands, pipelined);
    /// None when the visitor is not on the site.
    pub async fn visitor_record(&self, visitor: &str) -> Result<Option<VisitorRecord>> {
        let k = &self.keys;
        let c = self.client();
        let (fields, pages, chats) = tokio::join!(
            c.hgetall::<HashMap<String, String>, _>(k.visitor(visitor)),
            c.lrange::<Vec<String>, _>(k.visitor_pages(visitor), 0, -1),
            c.scard::<i64, _>(k.visitor_chats(visitor)),
        );
        let fields = fields?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some(VisitorRecord {
            fields,
            pages: pages?,
            chats: chats?,
        }))
    }

    /// Ids of the visitors now on the site, least recently seen first.
    pub async fn present_visitors(&self) -> Result<Vec<String>> {
        Ok(self
            .client()
            .zrange(self.keys.visitors(), 0, -1, None, false, None, false)
            .await?)
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
        agent_name: &str,
        text: &str,
        at: i64,
    ) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_invite,
                chat,
                vec![agent_name.into(), text.into(), at.to_string()],
            )
            .await?;
        Ok(n == 1)
    }
}
