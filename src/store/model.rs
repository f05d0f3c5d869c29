//! The records the store reads and writes. Timestamps are Unix milliseconds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an admin (or the command line, for the first admin) supplies to create an agent.
/// The password is never serialized nor shown by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct NewAgent {
    pub username: String,
    /// Empty means "same as the username".
    pub display_name: String,
    /// At least 8 characters; only its argon2id hash is stored.
    #[serde(skip_serializing)]
    pub password: String,
    /// `agent` or `admin`.
    pub role: String,
    /// Concurrent chats the router may give this agent, 1 to 100.
    pub max_chats: i64,
    /// Routing queues the agent serves; missing ones are created.
    pub queues: Vec<String>,
}

impl fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAgent")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .field("max_chats", &self.max_chats)
            .field("queues", &self.queues)
            .finish()
    }
}

/// A support agent. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub max_chats: i64,
    /// Sorted by name.
    pub queues: Vec<String>,
    pub created_at: i64,
    /// A disabled agent cannot log in and has no valid session.
    #[serde(default)]
    pub disabled: bool,
}

/// An admin's change to an agent; `None` (or absent) leaves the field as it is. Unknown fields
/// are refused, so a misspelt one is not silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentChanges {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub max_chats: Option<i64>,
    #[serde(default)]
    pub queues: Option<Vec<String>>,
}

/// A person who chatted, known by e-mail and/or the widget's visitor id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: i64,
    pub visitor_id: Option<String>,
    /// Stored trimmed and lower-cased.
    pub email: Option<String>,
    pub name: Option<String>,
    pub created_at: i64,
}

/// A case the agent keeps about a contact; it collects one or more chat messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: i64,
    pub contact_id: i64,
    pub subject: String,
    /// The agent who decided to create it; `None` when the system kept it.
    pub created_by: Option<i64>,
    pub created_at: i64,
    /// Created because no agent decided in time ("kept, never silently dropped").
    pub auto_kept: bool,
}

/// One chat, stored once with its whole transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: i64,
    pub chat_id: String,
    /// `None` when trashed.
    pub interaction_id: Option<i64>,
    pub contact_id: i64,
    pub agent_id: Option<i64>,
    pub queue: String,
    pub started_at: i64,
    pub accepted_at: Option<i64>,
    pub ended_at: i64,
    pub end_reason: String,
    /// `create`, `add`, `trash` or `keep`, as decided (an `add` that fell back to a new
    /// interaction still says `add`).
    pub decision: String,
    pub decided_by: Option<i64>,
    pub decided_at: i64,
    pub trashed: bool,
    /// The visitor's name as the chat carried it (pre-chat form or identify).
    #[serde(default)]
    pub visitor_name: Option<String>,
    /// The e-mail the chat carried: typed in the pre-chat form, or vouched for by the site.
    pub visitor_email: Option<String>,
    /// Whether `visitor_email` came from the site's signed identify (only then does it link
    /// the chat to a contact).
    pub email_verified: bool,
    /// The agents who handled the chat, in the order they joined it.
    pub agents: Vec<i64>,
    pub entries: Vec<TranscriptEntry>,
}

impl MessageRecord {
    /// Whether `agent` handled this chat (joined it, or decided what became of it).
    pub fn handled_by(&self, agent: i64) -> bool {
        self.agents.contains(&agent)
            || self.agent_id == Some(agent)
            || self.decided_by == Some(agent)
    }
}

/// One line of a transcript, as the chat's Redis stream held it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// The stream id that ordered it.
    pub seq: String,
    /// `message` or `system`.
    pub kind: String,
    /// `visitor`, `agent` or `system`.
    pub author: String,
    pub name: String,
    pub text: String,
    pub at: i64,
    /// What happened: `joined`, `ended`, `push_page` for system entries; `link` or `file`
    /// for messages; empty for plain text.
    pub event: String,
    /// Details of a link, pushed page or file (its id for downloads), when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// An internal entry (a supervisor's whisper to the agent, event `whisper`): shown as such
    /// in history and webhook payloads; the visitor never received it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

/// Everything the flush worker knows about an ended chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptRecord {
    pub chat_id: String,
    pub visitor_id: String,
    pub contact_name: Option<String>,
    /// The e-mail the site vouched for (signed identify): the contact is found or created by
    /// it. Never a typed e-mail, which anyone can type.
    pub contact_email: Option<String>,
    /// The e-mail shown for the chat (typed or verified), kept on the Message.
    #[serde(default)]
    pub visitor_email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    /// The agents who handled the chat, in the order they joined it.
    #[serde(default)]
    pub agents: Vec<i64>,
    pub question: Option<String>,
    pub queue: String,
    pub agent_id: Option<i64>,
    pub started_at: i64,
    pub accepted_at: Option<i64>,
    pub ended_at: i64,
    pub end_reason: String,
    /// `create`, `add`, `trash` or `keep`.
    pub decision: String,
    /// For `add`: the interaction to add to.
    pub interaction_id: Option<i64>,
    pub decided_by: Option<i64>,
    pub decided_at: i64,
    pub entries: Vec<TranscriptEntry>,
}

/// What a flush did. Both variants mean "safe to forget the chat in Redis".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushOutcome {
    Written {
        message_id: i64,
        interaction_id: Option<i64>,
    },
    /// An earlier flush of the same chat already stored it; nothing was written.
    AlreadyWritten { message_id: i64 },
}
