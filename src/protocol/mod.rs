//! Wire types for the WebSocket protocol (version 1), their codec and the error codes.
//! Pure: no I/O, no async. JSON text frames for browsers, the same schema as MessagePack
//! binary frames under the `switchboard.v1.msgpack` subprotocol. See `docs/protocol.md`.

mod codec;
mod codes;
mod nobody;
mod supervise;
mod visitors;

pub use codec::{
    decode_client, decode_server, encode_client, encode_server, DecodeError, Encoding,
};
pub use codes::close as close_codes;
pub use codes::ErrorCode;
pub use nobody::{InboxItem, QueueInfo, WaitingRequest};
pub use supervise::{MonitorAgent, MonitorChanges, MonitorChat, MonitorQueue, MonitorSnapshot};
pub use visitors::{CompactVisitor, PageSeen, SiteVisitor, VisitorChange, VisitorRow};

use serde::{Deserialize, Serialize};

/// Protocol version carried in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Subprotocol name that selects MessagePack frames.
pub const MSGPACK_SUBPROTOCOL: &str = "switchboard.v1.msgpack";
/// Subprotocol name that selects JSON frames (also the default without any subprotocol).
pub const JSON_SUBPROTOCOL: &str = "switchboard.v1.json";

/// A frame sent by a visitor or an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Visitor: ask for a chat. Answered by `queued`.
    RequestChat {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default)]
        question: Option<String>,
        #[serde(default)]
        queue: Option<String>,
    },
    /// Either side: send a text message. Answered by `ack`.
    Send {
        chat_id: String,
        /// Chosen by the client; a resend with the same id is stored once.
        client_msg_id: String,
        text: String,
    },
    /// Either side: replay everything after `last_seq` (empty = from the start), then go live.
    Resume {
        chat_id: String,
        #[serde(default)]
        last_seq: String,
    },
    /// Either side: end the chat (a visitor may also cancel a waiting request).
    End { chat_id: String },
    /// Agent: set availability.
    SetStatus { status: AgentStatus },
    /// Agent: take the chat on offer.
    Accept { chat_id: String },
    /// Agent: refuse the offer; the chat goes to another agent.
    Deny { chat_id: String },
    /// Agent: end the offered request without talking.
    Close { chat_id: String },
    /// Agent: after the end, what becomes of the transcript.
    Decide {
        chat_id: String,
        decision: Decision,
        #[serde(default)]
        interaction_id: Option<i64>,
    },
    /// Keep-alive; answered by `pong`.
    Ping {
        #[serde(default)]
        nonce: Option<u64>,
    },
    /// Visitor: the page now shown (sent on every page load and navigation).
    PageView {
        url: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        referrer: Option<String>,
    },
    /// Visitor: the organisation's site vouches for this logged-in visitor's e-mail;
    /// `signature` is the lowercase hex HMAC-SHA256 of `email` under `auth.identify_secret`.
    Identify {
        email: String,
        #[serde(default)]
        name: Option<String>,
        signature: String,
    },
    /// Agent: start receiving the site-visitors list: the first page of it
    /// (`visitors_snapshot`), then `visitors_changed` batches.
    WatchVisitors {
        /// Visitors per page; at most (and by default) `abuse.visitors_page_size`.
        #[serde(default)]
        limit: Option<u32>,
        /// `full` (the default): every row and change carries the whole record. `in_view`:
        /// pages and arrivals carry compact rows, and whole records come only for the
        /// visitors named by `view_visitors`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<String>,
    },
    /// Agent: the next page of the site-visitors list after the cursor a `visitors_snapshot`
    /// gave as `next`. Answered by `visitors_snapshot`.
    ListVisitors {
        after: String,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Agent: the page history of one visitor on the site. Answered by `visitor_history`.
    VisitorHistory { visitor_id: String },
    /// Agent watching with `rows: "in_view"`: the visitors whose whole records it wants (the
    /// rows it shows); replaces the previous set. Answered by `visitors_changed` with their
    /// records (`update`, or `leave` for those no longer on the site).
    ViewVisitors { ids: Vec<String> },
    /// Agent: stop receiving the site-visitors list.
    UnwatchVisitors,
    /// Agent: invite a visitor on the site to a chat (proactive chat).
    Invite {
        visitor_id: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Visitor: accept an invitation; the chat opens with the inviting agent.
    AcceptInvitation { chat_id: String },
    /// Visitor: decline an invitation.
    DeclineInvitation { chat_id: String },
    /// Either side: send a link (http or https) as a link entry.
    SendLink {
        chat_id: String,
        client_msg_id: String,
        url: String,
        #[serde(default)]
        title: Option<String>,
    },
    /// Agent: open this page (http or https) in the visitor's browser.
    PushPage {
        chat_id: String,
        client_msg_id: String,
        url: String,
    },
    /// Either side: typing started or stopped. Not stored.
    Typing { chat_id: String, typing: bool },
    /// Either side: everything up to `seq` was delivered to / read by this side.
    Receipt {
        chat_id: String,
        seq: String,
        state: ReceiptState,
    },
    /// Visitor: follow whether a queue is open (`queue_status` now and on every change).
    WatchQueue {
        #[serde(default)]
        queue: Option<String>,
    },
    /// Visitor: leave a message for the queue's agents (offline message). With `chat_id`,
    /// the visitor's waiting request ends first (they gave up waiting). Answered by
    /// `message_left`.
    LeaveMessage {
        #[serde(default)]
        queue: Option<String>,
        #[serde(default)]
        name: Option<String>,
        email: String,
        message: String,
        #[serde(default)]
        page_url: Option<String>,
        #[serde(default)]
        chat_id: Option<String>,
    },
    /// Agent: take a request from the queue's Waiting list (one agent wins).
    Pick { chat_id: String },
    /// Agent: hand the chat to another agent, or back to a queue.
    Transfer {
        chat_id: String,
        #[serde(default)]
        to_agent: Option<i64>,
        #[serde(default)]
        to_queue: Option<String>,
        /// For the agent who takes the chat next; the visitor never sees it.
        #[serde(default)]
        note: Option<String>,
    },
    /// Supervisor: start receiving the live monitor (`monitor_snapshot`, then
    /// `monitor_changed`).
    WatchMonitor,
    /// Supervisor: stop receiving the live monitor.
    UnwatchMonitor,
    /// Supervisor: a note to the chat's agent, never delivered to the visitor. Answered by `ack`.
    Whisper {
        chat_id: String,
        client_msg_id: String,
        text: String,
    },
    /// Supervisor: the running chat moves to you; its agent is told (`chat_unfollowed`,
    /// reason `taken_over`). Answered by `chat_assigned`.
    TakeOver { chat_id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptState {
    Delivered,
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Available,
    Away,
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Available => "available",
            AgentStatus::Away => "away",
            AgentStatus::Offline => "offline",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(AgentStatus::Available),
            "away" => Some(AgentStatus::Away),
            "offline" => Some(AgentStatus::Offline),
            _ => None,
        }
    }
}

/// What the agent does with a finished chat's transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// A new Interaction holding this chat's Message.
    Create,
    /// Add the Message to an existing Interaction of the same contact.
    Add,
    /// Recorded as trashed (who, when); the transcript is still written.
    Trash,
    /// No decision in time: kept as a Message of its own Interaction. Not sent by clients.
    Keep,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Create => "create",
            Decision::Add => "add",
            Decision::Trash => "trash",
            Decision::Keep => "keep",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(Decision::Create),
            "add" => Some(Decision::Add),
            "trash" => Some(Decision::Trash),
            "keep" => Some(Decision::Keep),
            _ => None,
        }
    }
}

/// One transcript entry, as stored in the chat's stream and as delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The stream id: the sequence number, ordered within the chat.
    pub seq: String,
    /// `message` (text from a participant) or `system` (joined, ended, ...).
    pub kind: EntryKind,
    /// `visitor`, `agent` or `system`.
    pub author: String,
    /// The agent an entry is by (an agent's message, link, file or pushed page) or about
    /// (`joined`, `left`); "" otherwise. Several agents may write into one chat (transfers):
    /// a console marks as its own only the entries with its agent's id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author_id: String,
    /// Display name of the author, when known.
    #[serde(default)]
    pub name: String,
    pub text: String,
    /// Unix time in milliseconds.
    pub at: i64,
    /// The sender's client message id (messages only).
    #[serde(default)]
    pub client_msg_id: String,
    /// Machine-readable event: for system entries `joined` (also after a transfer), `ended`,
    /// `push_page`; for messages `link` or `file` (plain text has none).
    #[serde(default)]
    pub event: String,
    /// Structured details of a link (`{"url","title"}`), a pushed page (`{"url"}`) or a file
    /// (`{"id","name","size","content_type"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Entry {
    /// An internal entry (a supervisor's `whisper`): kept in the transcript, shown to the
    /// chat's agents and supervisors, never delivered to the visitor.
    pub fn is_internal(&self) -> bool {
        is_internal_event(&self.event)
    }
}

/// Whether an entry's `event` marks it internal (see [`Entry::is_internal`]).
pub fn is_internal_event(event: &str) -> bool {
    event == "whisper"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Message,
    System,
}

/// A frame sent by the node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Welcome {
        version: u32,
        role: String,
        /// Visitor id or agent id.
        id: String,
        node: String,
        /// Live chats of this identity, to resume after a reload.
        chats: Vec<ChatSummary>,
        /// The keep-alive interval: the client sends `ping` this often and calls the link
        /// dead after twice this without any frame (docs/protocol.md, keep-alive).
        #[serde(default)]
        ping_interval_ms: u64,
        /// Redis's epoch: changes only when Redis loses its data (docs/protocol.md, `chat_lost`).
        #[serde(default)]
        epoch: String,
    },
    /// Visitor: the request is waiting; sent again whenever the position changes.
    Queued {
        chat_id: String,
        queue: String,
        position: u64,
        /// Typical wait of this queue lately (median of its recent request-to-accept times);
        /// absent while there is no history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_wait_ms: Option<u64>,
    },
    /// Agent: a chat is offered to you until `expires_at` (ms).
    Offer {
        chat_id: String,
        queue: String,
        name: String,
        email: String,
        /// Whether the site vouched for `email` (signed identify); false for a typed one, which
        /// proves nothing about who is asking.
        #[serde(default)]
        email_verified: bool,
        question: String,
        expires_at: i64,
    },
    /// Agent: the offer is gone (`timeout`, `customer_rejected`, `closed`).
    OfferRevoked { chat_id: String, reason: String },
    /// A transcript entry of a chat the connection follows.
    Entry { chat_id: String, entry: Entry },
    /// The chat has an agent.
    ChatStarted { chat_id: String, agent_name: String },
    /// The chat is over; agents then send `decide`.
    ChatEnded {
        chat_id: String,
        by: String,
        reason: String,
    },
    /// To the agent who had the chat: its visitor rated it (`good` or `bad`).
    Rated {
        chat_id: String,
        rating: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The resume of this chat has replayed everything missed; live from here.
    Resumed {
        chat_id: String,
        last_seq: String,
        /// Redis's epoch (as in `welcome`).
        #[serde(default)]
        epoch: String,
    },
    /// Redis lost the live state of this chat (it restarted without its data, or was
    /// flushed): the chat cannot go on. Close code 4410 follows.
    ChatLost { chat_id: String, message: String },
    /// A `send` was stored under `seq` (also for a duplicate resend).
    Ack {
        chat_id: String,
        client_msg_id: String,
        seq: String,
    },
    /// Agent: the decision was recorded; the transcript will be flushed.
    Decided { chat_id: String, decision: Decision },
    /// Agent: the status now in force; `reason` when the node changed it (`missed_offer`).
    Status {
        status: AgentStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Visitor: whether the queue is open now (after `watch_queue`, and on every change).
    QueueStatus(QueueInfo),
    /// Agent: the Waiting list of one of your queues (requests nobody has taken yet), sent on
    /// connect and whenever it changes.
    Waiting {
        queue: String,
        /// Requests waiting in all (the list shows the oldest, bounded).
        total: u64,
        requests: Vec<WaitingRequest>,
    },
    /// Visitor: the offline message was stored under `id`.
    MessageLeft { id: String },
    /// Agent: an offline message of one of your queues was left, claimed or marked done.
    InboxChanged { item: Box<InboxItem> },
    Pong {
        #[serde(default)]
        nonce: Option<u64>,
    },
    /// Agent: one page of the site-visitors list (after `watch_visitors` or `list_visitors`).
    VisitorsSnapshot {
        /// Whole records, or compact rows for a watcher with `rows: "in_view"`.
        visitors: Vec<VisitorRow>,
        /// The cursor this page starts after ("" for the first page).
        #[serde(default)]
        after: String,
        /// Cursor of the next page for `list_visitors`; "" when this was the last page.
        #[serde(default)]
        next: String,
        /// Visitors on the site when this page was read.
        #[serde(default)]
        total: u64,
        /// The most visitors one `view_visitors` may name (`abuse.visitors_in_view`).
        #[serde(default)]
        view_max: u32,
    },
    /// Agent: changes to the site-visitors list since the last frame, batched.
    VisitorsChanged { changes: Vec<VisitorChange> },
    /// Agent: the list changed faster than this connection's byte budget allows; changes
    /// stopped. Read the list again (`watch_visitors`) when convenient.
    VisitorsStale,
    /// Agent: a visitor's page history (reply to `visitor_history`), oldest first.
    VisitorHistory {
        visitor_id: String,
        pages: Vec<PageSeen>,
    },
    /// Visitor: an agent invites you to a chat until `expires_at` (ms).
    Invitation {
        chat_id: String,
        agent_name: String,
        message: String,
        expires_at: i64,
    },
    /// Agent: what became of an invitation (`accepted`, `declined`, `expired`, `gone`).
    InvitationResult {
        chat_id: String,
        visitor_id: String,
        result: String,
    },
    /// Agent: a chat was transferred to you; resume it to see its history.
    ChatAssigned {
        chat_id: String,
        from_agent_name: String,
        /// The internal note of the transfer ("" when none).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        note: String,
    },
    /// Agent: no connection of yours follows this chat any more (`reason`: `transferred`, or
    /// `taken_over` by a supervisor); close its tab.
    ChatUnfollowed { chat_id: String, reason: String },
    /// Supervisor: the whole live monitor (after `watch_monitor`, or when a change is too
    /// large to list).
    MonitorSnapshot(Box<MonitorSnapshot>),
    /// Supervisor: what changed on the monitor since the last frame, batched.
    MonitorChanged(Box<MonitorChanges>),
    /// The other side is typing (or stopped).
    Typing {
        chat_id: String,
        by: String,
        typing: bool,
    },
    /// The other side got (`delivered`) or read everything up to `seq`.
    Receipt {
        chat_id: String,
        by: String,
        seq: String,
        state: ReceiptState,
    },
    /// Something the client sent was refused. `ref` names the chat or client message id when known.
    Error {
        code: u16,
        message: String,
        #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// For `4100` and `4102`: milliseconds after which the refused frame may succeed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatSummary {
    pub chat_id: String,
    /// `queued`, `offered`, `active`, `ended` (wrap-up, awaiting decision).
    pub state: String,
    pub queue: String,
    #[serde(default)]
    pub agent_id: String,
}

impl ServerFrame {
    pub fn error(code: ErrorCode, message: impl Into<String>, reference: Option<String>) -> Self {
        ServerFrame::Error {
            code: code.code(),
            message: message.into(),
            reference,
            retry_after_ms: None,
        }
    }
}
