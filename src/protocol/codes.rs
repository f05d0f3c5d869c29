//! Numbered error codes carried in `error` frames and HTTP error bodies, and WebSocket close
//! codes. The range tells the client what to do:
//! 4000-4099: the request is wrong, do not resend it unchanged;
//! 4100-4199: retry the same request later;
//! 4400-4499 (close codes): the connection is over, see each code;
//! 4500-4599: the node or Redis failed, retry with backoff.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    /// Not valid JSON / MessagePack, or an unknown `type` or field.
    BadFrame,
    /// A frame over `limits.max_frame_bytes`.
    FrameTooLarge,
    /// A text over `limits.max_message_chars`.
    MessageTooLong,
    /// A field with an invalid value (empty text, bad e-mail, bad id).
    InvalidField,
    /// No such chat, queue, agent or interaction (or not visible to you).
    NotFound,
    /// Authenticated, but not allowed: not your chat, not your role.
    Forbidden,
    /// The chat is not in a state that allows this (accepting an offer that is gone, sending to an ended chat).
    WrongState,
    /// A `last_seq` that is malformed or ahead of the chat.
    BadSequence,
    /// The chat's transcript reached its cap (`abuse.transcript_max_entries` / `_bytes`): the
    /// visitor can write no more; the agent has a small reserve to say goodbye and end it.
    TranscriptFull,
    /// Too many frames (per connection, or per identity across its connections); slow down.
    RateLimited,
    /// Too many failed logins from this IP or for this username; retry after `Retry-After`.
    LoginThrottled,
    /// A per-visitor or per-IP quota is used up (new identities, chat requests, page views);
    /// retry after `retry_after_ms` (HTTP: `Retry-After`).
    TooManyRequests,
    /// The node failed; logged on the node.
    Internal,
    /// Redis or the SQL store is unreachable.
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::BadFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::MessageTooLong,
        ErrorCode::InvalidField,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::WrongState,
        ErrorCode::BadSequence,
        ErrorCode::TranscriptFull,
        ErrorCode::RateLimited,
        ErrorCode::LoginThrottled,
        ErrorCode::TooManyRequests,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    pub fn code(self) -> u16 {
        match self {
            ErrorCode::BadFrame => 4000,
            ErrorCode::FrameTooLarge => 4001,
            ErrorCode::MessageTooLong => 4002,
            ErrorCode::InvalidField => 4003,
            ErrorCode::NotFound => 4004,
            ErrorCode::Forbidden => 4005,
            ErrorCode::WrongState => 4006,
            ErrorCode::BadSequence => 4007,
            ErrorCode::TranscriptFull => 4009,
            ErrorCode::RateLimited => 4100,
            ErrorCode::LoginThrottled => 4101,
            ErrorCode::TooManyRequests => 4102,
            ErrorCode::Internal => 4500,
            ErrorCode::Unavailable => 4501,
        }
    }

    /// Low-cardinality label for metrics.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::BadSequence => "bad_sequence",
            ErrorCode::TranscriptFull => "transcript_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::LoginThrottled => "login_throttled",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// The HTTP status used when the same condition happens on the HTTP API.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadFrame
            | ErrorCode::InvalidField
            | ErrorCode::MessageTooLong
            | ErrorCode::BadSequence => 400,
            ErrorCode::FrameTooLarge => 413,
            ErrorCode::NotFound => 404,
            ErrorCode::Forbidden => 403,
            ErrorCode::WrongState | ErrorCode::TranscriptFull => 409,
            ErrorCode::RateLimited | ErrorCode::LoginThrottled | ErrorCode::TooManyRequests => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
        }
    }
}

/// WebSocket close codes sent by the node.
pub mod close {
    /// Token missing, malformed, forged or expired, or the agent's session ended (logout,
    /// password reset, agent disabled or deleted): get a new one, do not reconnect with it.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The Origin is not one of the configured sites.
    pub const FORBIDDEN_ORIGIN: u16 = 4403;
    /// The client did not read fast enough and its outbound queue filled: reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4408;
    /// An admin changed the agent (name, role, queues, capacity): reconnect at once, the new
    /// connection carries the new settings.
    pub const AGENT_CHANGED: u16 = 4409;
    /// Redis lost the service's live state (`chat_lost` frames came first): the chats are gone;
    /// tell the user, do not reconnect to resume them.
    pub const STATE_LOST: u16 = 4410;
    /// Too many refused frames in a row: fix the client.
    pub const TOO_MANY_ERRORS: u16 = 4429;
    /// Too many open WebSockets of this visitor, or from this IP, across the cluster
    /// (`abuse.sockets_per_visitor`, `abuse.sockets_per_ip`): close a tab, back off, retry.
    pub const TOO_MANY_CONNECTIONS: u16 = 4430;
    /// The node is shutting down: reconnect (through the load balancer, to another node) and resume.
    pub const DRAINING: u16 = 4503;
}
