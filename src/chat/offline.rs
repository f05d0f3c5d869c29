//! Leave a message (offline message): what a visitor leaves when nobody is there, stored as an
//! interaction of kind `offline_message`, counted against hourly allowances per visitor and
//! per IP (in Redis, so they hold across nodes), announced by e-mail through the notification
//! stream and to webhooks (`offline_message.created`), and worked by agents of the queue as an
//! inbox (claim, done). Also the admin's
//! per-queue settings (offline text, business hours).

use super::availability::agents_key;
use super::hours::{Hours, HoursSpec};
use super::webhooks::OfflineMessageCreated;
use super::{
    clean_optional, identity, plausible_email, ChatError, ChatResult, ClientInfo, Party, Service,
    CUSTOMER_REJECTED, VISITOR_ENDED,
};
use crate::protocol::{ErrorCode, InboxItem, ServerFrame};
use crate::redis::RedisError;
use crate::store::{NewOfflineMessage, OfflineMessage, QueueSettings};

/// Longest page URL kept with a message, in characters.
const MAX_URL_CHARS: usize = 2000;
/// Longest offline text of a queue, in characters.
const MAX_OFFLINE_TEXT: usize = 500;
/// The timer kind that emits `offline_message.created` when the node storing the message
/// could not (see `leave_message`).
pub(crate) const OFFLINE_HOOK_TIMER: &str = "offline_hook";

/// The `offline_message.created` fields of a stored message.
fn offline_event(m: &OfflineMessage) -> OfflineMessageCreated {
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    OfflineMessageCreated {
        uid: m.uid.clone(),
        interaction_id: Some(m.interaction_id),
        queue: m.queue.clone(),
        visitor_id: m.visitor_id.clone(),
        name: some(&m.name),
        email: some(&m.email),
        message: m.message.clone(),
        page_url: some(&m.page_url),
        created_at: m.created_at,
    }
}

/// What a visitor's `leave_message` frame carries.
#[derive(Debug, Clone, Default)]
pub struct LeftMessage {
    pub queue: Option<String>,
    pub name: Option<String>,
    pub email: String,
    pub message: String,
    pub page_url: Option<String>,
    /// The visitor's waiting request, ended first (they gave up waiting).
    pub chat_id: Option<String>,
}

impl Service {
    /// Stores a visitor's offline message; returns its id.
    pub async fn leave_message(
        &self,
        party: &Party,
        client: &ClientInfo,
        m: LeftMessage,
    ) -> ChatResult<String> {
        let Party::Visitor { id: visitor } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors leave messages",
            ));
        };
        let name = clean_optional(m.name, 100, "name", false)?.unwrap_or_default();
        let email = clean_optional(Some(m.email), 254, "email", false)?.unwrap_or_default();
        if !plausible_email(&email) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "email is not a valid address",
            ));
        }
        let max = self.settings.offline.max_message_chars;
        let Some(message) = clean_optional(Some(m.message), max, "message", true)? else {
            return Err(ChatError::new(ErrorCode::InvalidField, "message is empty"));
        };
        let page_url =
            clean_optional(m.page_url, MAX_URL_CHARS, "page_url", false)?.unwrap_or_default();
        if !(page_url.is_empty()
            || page_url.starts_with("http://")
            || page_url.starts_with("https://"))
        {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "page_url must be an http or https URL",
            ));
        }
        let queue = self.known_queue(m.queue).await?;
        let o = &self.settings.offline;
        match self
            .redis
            .count_offline_message(
                visitor,
                &client.ip,
                o.per_visitor_per_hour,
                o.per_ip_per_hour,
            )
            .await
        {
            Ok(()) => {}
            Err(RedisError::Refused(_)) => {
                self.metrics
                    .offline_messages
                    .with_label_values(&["limited"])
                    .inc();
                return Err(ChatError::new(
                    ErrorCode::RateLimited,
                    "too many messages from you this hour; please try again later",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(chat) = m.chat_id.filter(|c| !c.is_empty()) {
            self.give_up_waiting(visitor, &chat).await?;
        }
        let uid = identity::new_id();
        // The job first: if this node dies after the insert, the notification still goes out
        // (a job whose message never got stored is dropped by the worker).
        if self.settings.mail.enabled() {
            self.redis.enqueue_mail(&uid).await?;
        }
        // Likewise the webhook event: an outbox timer that the direct emit below removes, and
        // that otherwise emits it (if the message was stored) once it is due.
        let hook_timer = format!("{OFFLINE_HOOK_TIMER}:{uid}");
        let hook_due = super::now_ms() + self.settings.chat.timer_lease_ms as i64;
        self.redis
            .schedule(vec![(hook_timer.clone(), hook_due)])
            .await?;
        let stored = self
            .store
            .create_offline_message(&NewOfflineMessage {
                uid: uid.clone(),
                queue: queue.clone(),
                visitor_id: visitor.clone(),
                name,
                email,
                message,
                page_url,
                ip: client.ip.clone(),
            })
            .await?;
        self.metrics
            .offline_messages
            .with_label_values(&["created"])
            .inc();
        self.tell_inbox(&stored).await;
        match self.hook_offline_message(&offline_event(&stored)).await {
            Ok(()) => {
                let _ = self.redis.timer_done(&hook_timer, hook_due).await;
            }
            Err(e) => tracing::warn!(
                uid = %uid,
                error = %e.message,
                "offline_message.created not appended; its outbox timer retries"
            ),
        }
        Ok(uid)
    }

    /// The `offline_hook:UID` outbox timer: emits the message's event if the message was
    /// stored (the event id is the uid's, so a repeat is recognisable downstream).
    pub(crate) async fn offline_hook_due(&self, uid: &str) -> ChatResult<()> {
        match self.store.offline_message(uid).await? {
            Some(m) => self.hook_offline_message(&offline_event(&m)).await,
            None => Ok(()),
        }
    }

    /// Ends the visitor's request if it is still waiting (queued or on offer).
    async fn give_up_waiting(&self, visitor: &str, chat: &str) -> ChatResult<()> {
        let r = self.redis.chat_record(chat).await?;
        if r.get("visitor").map(String::as_str) != Some(visitor) {
            return Err(ChatError::new(ErrorCode::NotFound, "no such chat"));
        }
        match r.get("state").map(String::as_str) {
            Some("queued") | Some("offered") => {
                match self
                    .end_as(chat, "visitor", visitor, VISITOR_ENDED, CUSTOMER_REJECTED)
                    .await
                {
                    Ok(()) => Ok(()),
                    // Taken or ended meanwhile: the message is still worth keeping.
                    Err(e) if e.code == ErrorCode::WrongState => Ok(()),
                    Err(e) => Err(e),
                }
            }
            _ => Ok(()),
        }
    }

    /// The inbox item agents see for a stored message.
    async fn inbox_item(&self, m: &OfflineMessage) -> InboxItem {
        let claimed_by_name = match m.claimed_by {
            Some(a) => match self.store.agent(a).await {
                Ok(Some(agent)) => agent.display_name,
                _ => String::new(),
            },
            None => String::new(),
        };
        InboxItem {
            id: m.uid.clone(),
            interaction_id: m.interaction_id,
            queue: m.queue.clone(),
            name: m.name.clone(),
            email: m.email.clone(),
            email_verified: false,
            message: m.message.clone(),
            page_url: m.page_url.clone(),
            status: m.status.clone(),
            claimed_by: m.claimed_by,
            claimed_by_name,
            created_at: m.created_at,
        }
    }

    /// Every agent of the message's queue, on any node, sees the change live.
    async fn tell_inbox(&self, m: &OfflineMessage) {
        let item = Box::new(self.inbox_item(m).await);
        self.tell(&agents_key(&m.queue), &ServerFrame::InboxChanged { item })
            .await;
    }

    /// The inbox of the agent's queues (open and claimed; with `done`, finished ones too).
    pub async fn inbox(
        &self,
        queues: &[String],
        done: bool,
        limit: i64,
    ) -> ChatResult<Vec<InboxItem>> {
        let list = self.store.inbox(queues, done, limit).await?;
        let mut out = Vec::with_capacity(list.len());
        for m in &list {
            out.push(self.inbox_item(m).await);
        }
        Ok(out)
    }

    /// Claims (`done` false) or finishes a message of one of the agent's queues. Of agents
    /// claiming at once on any nodes, one wins; the others get `wrong_state`.
    pub async fn work_message(
        &self,
        agent: i64,
        queues: &[String],
        uid: &str,
        done: bool,
    ) -> ChatResult<InboxItem> {
        let m = self
            .store
            .offline_message(uid)
            .await?
            .filter(|m| queues.contains(&m.queue))
            .ok_or_else(|| ChatError::new(ErrorCode::NotFound, "no such message in your queues"))?;
        let m = if done {
            self.store.finish_offline_message(&m.uid, agent).await?
        } else {
            self.store.claim_offline_message(&m.uid, agent).await?
        };
        self.tell_inbox(&m).await;
        Ok(self.inbox_item(&m).await)
    }

    /// An admin sets a queue's offline text and business hours (None = always open while
    /// staffed); every node re-reads them and tells its watching visitors.
    pub async fn set_queue_settings(
        &self,
        queue: &str,
        offline_text: String,
        hours: Option<HoursSpec>,
    ) -> ChatResult<QueueSettings> {
        let s = checked_settings(queue, offline_text, hours)?;
        self.store_queue_settings(s).await
    }

    /// Stores checked settings and tells every node's watching visitors.
    pub(super) async fn store_queue_settings(&self, s: QueueSettings) -> ChatResult<QueueSettings> {
        let queue = s.name.as_str();
        self.store.set_queue_settings(&s).await?;
        let channel = self.redis.keys.staffed_channel();
        if let Err(e) = self.redis.publish(&channel, format!("{queue}:cfg")).await {
            tracing::warn!(error = %e, "queue settings change not published; nodes pick it up within a minute");
        }
        Ok(s)
    }

    /// A queue's settings as stored, for the admin.
    pub async fn queue_settings(&self, queue: &str) -> ChatResult<QueueSettings> {
        self.store
            .queue_settings(queue)
            .await?
            .ok_or_else(|| ChatError::new(ErrorCode::NotFound, format!("no queue named {queue}")))
    }
}

/// A queue's settings as an admin gave them, checked: `offline_text` at most
/// `MAX_OFFLINE_TEXT` characters, business hours that parse.
pub(super) fn checked_settings(
    queue: &str,
    offline_text: String,
    hours: Option<HoursSpec>,
) -> ChatResult<QueueSettings> {
    let offline_text = clean_optional(Some(offline_text), MAX_OFFLINE_TEXT, "offline_text", true)?
        .unwrap_or_default();
    let business_hours = match hours {
        Some(spec) => {
            Hours::from_spec(&spec).map_err(|e| ChatError::new(ErrorCode::InvalidField, e))?;
            serde_json::to_string(&spec).expect("hours serialise")
        }
        None => String::new(),
    };
    Ok(QueueSettings {
        name: queue.to_string(),
        offline_text,
        business_hours,
    })
}
