//! What the agent's console shows beside a chat it handles: who the visitor is (name, e-mail
//! and whether the site vouched for it), where they are on the site now and were before, their
//! address, country and browser, the contact's earlier interactions, and the note of the
//! transfer that brought the chat. Also who a chat can be transferred to.

use super::visitors::site_visitor;
use super::{ChatError, ChatResult, Party, Service};
use crate::protocol::{ErrorCode, PageSeen, SiteVisitor};
use crate::store::Interaction;
use serde::Serialize;

/// `GET /api/chats/{id}/visitor`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatPanel {
    pub chat_id: String,
    pub state: String,
    pub queue: String,
    pub visitor_id: String,
    /// From the request, else from the site's `identify` ("" when none).
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    /// The visit now on the site (None once the visitor left).
    pub visitor: Option<SiteVisitor>,
    /// The browser's User-Agent ("" when unknown).
    pub browser: String,
    /// The pages of this visit, oldest first.
    pub pages: Vec<PageSeen>,
    /// The internal note of the last transfer and who wrote it ("" when none).
    pub transfer_note: String,
    pub transferred_by: String,
    /// Earlier interactions of the chat's contact (verified e-mail, else visitor id), newest
    /// first; empty when the store knows no contact.
    pub interactions: Vec<Interaction>,
}

/// One agent in the transfer picker (`GET /api/agents/roster`).
#[derive(Debug, Clone, Serialize)]
pub struct RosterAgent {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub load: i64,
    pub max_chats: i64,
    pub queues: Vec<String>,
    /// Takes a transfer now: available, connected and below its limit.
    pub can_take: bool,
}

impl Service {
    /// The visitor panel of a chat; only for the agent it is assigned or offered to.
    pub async fn chat_panel(&self, party: &Party, chat: &str) -> ChatResult<ChatPanel> {
        if !matches!(party, Party::Agent { .. }) {
            return Err(ChatError::new(ErrorCode::Forbidden, "agents only"));
        }
        let access = self.authorise(party, chat).await?;
        let r = self.redis.chat_record(chat).await?;
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        let visitor_id = g("visitor");
        let (record, pages) = tokio::join!(
            self.redis.visitor_record(&visitor_id),
            self.redis.visitor_pages(&visitor_id),
        );
        let record = record?;
        let verified = super::email_verified(&r);
        let email = g("email");
        let contact = self
            .store
            .contact_for(
                &visitor_id,
                Some(&email)
                    .filter(|e| verified && !e.is_empty())
                    .map(|e| e.as_str()),
            )
            .await?;
        let interactions = match contact {
            Some(c) => self.store.interactions_of_contact(c.id).await?,
            None => vec![],
        };
        let field = |k: &str| {
            record
                .as_ref()
                .and_then(|v| v.fields.get(k).cloned())
                .unwrap_or_default()
        };
        let name = Some(g("name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| field("name"));
        let (email, email_verified) = if email.is_empty() {
            (field("email"), field("email_verified") == "1")
        } else {
            (email, verified)
        };
        Ok(ChatPanel {
            chat_id: chat.to_string(),
            state: access.state,
            queue: access.queue,
            name,
            email,
            email_verified,
            browser: field("browser"),
            visitor: record.as_ref().map(|v| site_visitor(&visitor_id, v)),
            pages: pages?
                .iter()
                .filter_map(|p| serde_json::from_str::<PageSeen>(p).ok())
                .collect(),
            transfer_note: g("note"),
            transferred_by: g("note_by"),
            interactions,
            visitor_id,
        })
    }

    /// Every enabled agent with its status and load, for the transfer picker.
    pub async fn roster(&self) -> ChatResult<Vec<RosterAgent>> {
        let agents = self.enabled_agents().await?;
        let ids: Vec<i64> = agents.iter().map(|a| a.id).collect();
        let loads = self.redis.agent_loads(&ids).await?;
        Ok(agents
            .into_iter()
            .zip(loads)
            .map(|(a, l)| RosterAgent {
                can_take: l.status == "available" && l.routable && l.load < a.max_chats,
                id: a.id,
                name: a.display_name,
                status: l.status,
                load: l.load,
                max_chats: a.max_chats,
                queues: a.queues,
            })
            .collect())
    }
}
