//! Wire types of the "nobody is there" frames: a queue's open state, its Waiting list, and
//! offline messages as the console's inbox shows them.

use serde::{Deserialize, Serialize};

/// Whether a queue takes chats now (`queue_status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub queue: String,
    /// Staffed and within business hours: the widget offers a chat, else a message.
    pub open: bool,
    /// An agent is available with free capacity.
    pub staffed: bool,
    /// Within the queue's business hours (always true when it has none).
    pub in_hours: bool,
    /// The queue's own text for visitors while it is closed ("" = the widget's default).
    #[serde(default)]
    pub offline_text: String,
    /// After this long in the queue the widget offers to leave a message instead.
    pub max_wait_ms: u64,
}

/// One request of a Waiting list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingRequest {
    pub chat_id: String,
    pub name: String,
    /// As the visitor typed it.
    pub email: String,
    /// Always false: a typed e-mail is a claim, not a verified address.
    pub email_verified: bool,
    pub question: String,
    /// The visitor's current page ("" when unknown).
    pub page_url: String,
    /// When the visitor asked (ms); the waiting time counts from here.
    pub created_at: i64,
}

/// An offline message, as the console's inbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxItem {
    /// The message's id (also in `message_left`).
    pub id: String,
    /// The interaction that holds it (kind `offline_message`).
    pub interaction_id: i64,
    pub queue: String,
    pub name: String,
    pub email: String,
    /// Always false: see [`WaitingRequest::email_verified`].
    pub email_verified: bool,
    pub message: String,
    pub page_url: String,
    /// `open`, `claimed` or `done`.
    pub status: String,
    #[serde(default)]
    pub claimed_by: Option<i64>,
    #[serde(default)]
    pub claimed_by_name: String,
    pub created_at: i64,
}
