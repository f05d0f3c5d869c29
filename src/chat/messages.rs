//! What participants put into a running chat: texts, links, pushed pages and files uploaded
//! through the files API (stored, in order, deduplicated by client message id) and typing
//! indicators and receipts (not stored: relayed to the chat's followers on every node).

use super::{now_ms, ChatAccess, ChatError, ChatResult, Party, Service};
use crate::chat::hub::ConnId;
use crate::protocol::{ErrorCode, ReceiptState, ServerFrame};
use crate::redis::{Append, RedisError};
use crate::store::FileMeta;
use serde_json::json;

/// Longest URL accepted in a link, a pushed page or a page view.
pub const MAX_URL_BYTES: usize = 2048;

/// Accepts only absolute http(s) URLs with a host: `javascript:`, `data:` and friends never
/// reach a browser through Switchboard. A user name or password before the host is refused:
/// `https://shop.example@evil.example/` reads as the shop but opens `evil.example`.
pub fn safe_url(raw: &str) -> ChatResult<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_BYTES {
        return Err(ChatError::new(
            ErrorCode::InvalidField,
            format!("url must be 1-{MAX_URL_BYTES} bytes"),
        ));
    }
    let u = url::Url::parse(raw)
        .map_err(|e| ChatError::new(ErrorCode::InvalidField, format!("url is not valid: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(ChatError::new(
            ErrorCode::InvalidField,
            "url must be http or https with a host",
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ChatError::new(
            ErrorCode::InvalidField,
            "url must not contain a user name or password (user@host)",
        ));
    }
    Ok(u.to_string())
}

/// The `ack` of a stored entry.
fn ack(chat: &str, client_msg_id: &str, seq: String) -> ServerFrame {
    ServerFrame::Ack {
        chat_id: chat.into(),
        client_msg_id: client_msg_id.into(),
        seq,
    }
}

pub(super) fn check_client_msg_id(id: &str) -> ChatResult<()> {
    if id.is_empty() || id.len() > 64 {
        return Err(ChatError::new(
            ErrorCode::InvalidField,
            "client_msg_id must be 1-64 bytes",
        ));
    }
    Ok(())
}

impl Service {
    fn require_following(&self, chat: &str, conn: ConnId) -> ChatResult<()> {
        if !self.hub.is_following(&self.chat_channel(chat), conn) {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "resume the chat before writing to it",
            ));
        }
        Ok(())
    }

    /// Stores one entry and answers with its `ack`.
    pub(super) async fn append(&self, chat: &str, a: Append<'_>) -> ChatResult<ServerFrame> {
        let seq = self.store_entry(chat, &a).await?;
        Ok(ack(chat, a.client_msg_id, seq))
    }

    /// The one place an entry is written into a transcript; the script refuses a writer who is
    /// not the chat's visitor or agent (`forbidden`) and a chat that is not running. Returns
    /// the entry's sequence number.
    async fn store_entry(&self, chat: &str, a: &Append<'_>) -> ChatResult<String> {
        let started = std::time::Instant::now();
        let (seq, new) = match self
            .redis
            .chat_append(chat, a, now_ms(), &self.transcript_caps)
            .await
        {
            Err(RedisError::Refused(r)) if r == "cap_reached" => {
                self.limits.refused("transcript");
                return Err(RedisError::Refused(r).into());
            }
            other => other?,
        };
        self.metrics
            .redis_append
            .observe(started.elapsed().as_secs_f64());
        if new {
            self.metrics.messages.inc();
        }
        Ok(seq)
    }

    /// A text message. Takes the decoded frame's chat and message ids: its `ack` moves them
    /// rather than copying them.
    pub async fn send(
        &self,
        party: &Party,
        conn: ConnId,
        access: &ChatAccess,
        chat_id: String,
        client_msg_id: String,
        text: &str,
    ) -> ChatResult<ServerFrame> {
        check_client_msg_id(&client_msg_id)?;
        self.check_text(text)?;
        let entry = Append {
            client_msg_id: &client_msg_id,
            text,
            ..Default::default()
        };
        let seq = self.append_as(party, conn, access, &chat_id, entry).await?;
        Ok(ServerFrame::Ack {
            chat_id,
            client_msg_id,
            seq,
        })
    }

    /// A message text: not blank, at most `limits.max_message_chars`.
    pub(super) fn check_text(&self, text: &str) -> ChatResult<()> {
        if text.trim().is_empty() {
            return Err(ChatError::new(ErrorCode::InvalidField, "text is empty"));
        }
        let max = self.settings.limits.max_message_chars;
        if text.chars().count() > max {
            return Err(ChatError::new(
                ErrorCode::MessageTooLong,
                format!("text is over {max} characters"),
            ));
        }
        Ok(())
    }

    /// Stores a participant's entry under its role, id and display name, once the connection
    /// is known to follow the chat. Returns the entry's sequence number.
    async fn append_as(
        &self,
        party: &Party,
        conn: ConnId,
        access: &ChatAccess,
        chat: &str,
        entry: Append<'_>,
    ) -> ChatResult<String> {
        self.require_following(chat, conn)?;
        let actor = party.actor();
        let entry = Append {
            role: party.role(),
            actor: &actor,
            name: &access.display_name,
            ..entry
        };
        self.store_entry(chat, &entry).await
    }

    /// A link entry: the URL is the text, with an optional title in `data`.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_link(
        &self,
        party: &Party,
        conn: ConnId,
        access: &ChatAccess,
        chat: &str,
        client_msg_id: &str,
        url: &str,
        title: Option<&str>,
    ) -> ChatResult<ServerFrame> {
        check_client_msg_id(client_msg_id)?;
        let url = safe_url(url)?;
        let title = title.map(str::trim).unwrap_or("");
        if title.chars().count() > 200 {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "title is over 200 characters",
            ));
        }
        let entry = Append {
            client_msg_id,
            text: &url,
            event: "link",
            data: Some(json!({ "url": url, "title": title })),
            ..Default::default()
        };
        let seq = self.append_as(party, conn, access, chat, entry).await?;
        Ok(ack(chat, client_msg_id, seq))
    }

    /// Pushes a page to the visitor's browser: a system entry the widget acts on when it
    /// arrives live (a replay shows it, but does not navigate again).
    pub async fn push_page(
        &self,
        party: &Party,
        conn: ConnId,
        access: &ChatAccess,
        chat: &str,
        client_msg_id: &str,
        url: &str,
    ) -> ChatResult<ServerFrame> {
        let Party::Agent { .. } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents push pages",
            ));
        };
        check_client_msg_id(client_msg_id)?;
        let url = safe_url(url)?;
        let entry = Append {
            client_msg_id,
            text: &url,
            system: true,
            event: "push_page",
            data: Some(json!({ "url": url })),
            ..Default::default()
        };
        let seq = self.append_as(party, conn, access, chat, entry).await?;
        Ok(ack(chat, client_msg_id, seq))
    }

    /// Who may put a file into `chat` over HTTP: its visitor or its agent, while it runs.
    /// Checked before an upload is stored; the append script checks again when the file's
    /// entry is written (`send_file`).
    pub async fn authorise_file(&self, party: &Party, chat: &str) -> ChatResult<ChatAccess> {
        let access = self.authorise(party, chat).await?;
        if access.state != "active" {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                "files can be sent only while the chat is running",
            ));
        }
        Ok(access)
    }

    /// The `file` entry announcing a stored upload (client message id `file:ID`), written under
    /// the party's role, id and display name like every other entry. Returns its sequence
    /// number.
    pub async fn send_file(
        &self,
        party: &Party,
        access: &ChatAccess,
        chat: &str,
        file: &FileMeta,
    ) -> ChatResult<String> {
        let actor = party.actor();
        let client_msg_id = format!("file:{}", file.id);
        let entry = Append {
            role: party.role(),
            actor: &actor,
            name: &access.display_name,
            client_msg_id: &client_msg_id,
            text: &file.name,
            event: "file",
            data: Some(json!({
                "id": file.id, "name": file.name, "size": file.size,
                "content_type": file.content_type,
            })),
            ..Default::default()
        };
        self.store_entry(chat, &entry).await
    }

    /// Relays a frame to every follower of the chat on every node, without storing it.
    async fn relay(&self, chat: &str, frame: &ServerFrame) -> ChatResult<()> {
        let payload = serde_json::to_string(&json!({ "relay": frame })).expect("frames serialise");
        self.redis
            .publish(&self.chat_channel(chat), payload)
            .await?;
        Ok(())
    }

    pub async fn typing(
        &self,
        party: &Party,
        conn: ConnId,
        chat: &str,
        typing: bool,
    ) -> ChatResult<()> {
        self.require_following(chat, conn)?;
        self.relay(
            chat,
            &ServerFrame::Typing {
                chat_id: chat.into(),
                by: party.role().into(),
                typing,
            },
        )
        .await
    }

    /// Delivered / read state: relayed to the chat's followers on every node (not stored; a
    /// client that reconnects sends its receipts again).
    pub async fn receipt(
        &self,
        party: &Party,
        conn: ConnId,
        chat: &str,
        seq: &str,
        state: ReceiptState,
    ) -> ChatResult<()> {
        if crate::chat::hub::Seq::parse(seq).is_none() {
            return Err(ChatError::new(
                ErrorCode::BadSequence,
                "seq must be a sequence number like 1700000000000-0",
            ));
        }
        self.require_following(chat, conn)?;
        self.relay(
            chat,
            &ServerFrame::Receipt {
                chat_id: chat.into(),
                by: party.role().into(),
                seq: seq.into(),
                state,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_pass() {
        assert_eq!(
            safe_url(" https://shop.example/a?b=1 ").unwrap(),
            "https://shop.example/a?b=1"
        );
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<script>",
            "ftp://x.example/",
            "https://",
            "//x.example",
            "",
            "vbscript:msgbox",
            "https://shop.example@evil.example/",
            "https://shop.example:pw@evil.example/",
            "https://:pw@evil.example/",
            "http://user@evil.example",
        ] {
            assert!(safe_url(bad).is_err(), "{bad}");
        }
        assert!(safe_url(&format!("https://x.example/{}", "a".repeat(3000))).is_err());
    }
}
