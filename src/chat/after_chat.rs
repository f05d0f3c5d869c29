//! What a visitor can do once their chat has ended: rate it (good or bad, with an optional
//! comment) and have its transcript e-mailed to them. Both need the chat's after-chat ticket
//! (`redis::after_chat`): set when a chat an agent joined ends, naming its visitor, expiring
//! after `chat.after_chat_window_ms`. Both are limited per visitor and per IP across nodes
//! (`abuse.ratings_*`, `abuse.transcript_mails_*`).
//!
//! A rating is written to SQL at once, keyed by the chat id, whether or not the transcript has
//! been flushed: the interaction detail joins it by chat id, so a rating given before the
//! flush and one given after are found alike, and a second one is refused by the key.

use super::{clean_optional, now_ms, plausible_email, ChatError, ChatResult, Service};
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::{AfterChat, ChatRecord};
use crate::store::{Rating, TranscriptEntry};
use lettre::message::header::ContentType;
use lettre::{AsyncTransport, Message};

/// Longest rating comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

impl Service {
    /// Sets the after-chat ticket of a chat that just ended (from `apply_end`, so repeated
    /// until it succeeds). A request nobody joined gets none: there is no one to rate.
    pub(super) async fn open_after_chat(
        &self,
        chat: &str,
        r: &ChatRecord,
        ended_at: i64,
    ) -> ChatResult<()> {
        let visitor = r.get("visitor").cloned().unwrap_or_default();
        if visitor.is_empty() || r.get("accepted").is_none_or(|a| a.is_empty()) {
            return Ok(());
        }
        let window = self.settings.chat.after_chat_window_ms as i64;
        let left = ended_at + window - now_ms();
        if left <= 0 {
            return Ok(());
        }
        let ticket = AfterChat {
            visitor,
            queue: r.get("queue").cloned().unwrap_or_default(),
            agent: r.get("agent").and_then(|a| a.parse().ok()),
            ended_at,
        };
        self.redis
            .set_after_chat(chat, &ticket, left as u64)
            .await?;
        Ok(())
    }

    /// The ticket of `chat` if `visitor` may act on it now. Someone else's chat and one past
    /// its window are refused alike, so the answer tells nothing about other visitors' chats.
    async fn ticket_for(&self, visitor: &str, chat: &str, what: &str) -> ChatResult<AfterChat> {
        match self.redis.after_chat(chat).await? {
            Some(t) if t.visitor == visitor => Ok(t),
            _ => Err(ChatError::new(
                ErrorCode::NotFound,
                format!("this chat can no longer be {what}"),
            )),
        }
    }

    /// Stores a visitor's rating of their ended chat, once; counts it, tells the agent (live, if
    /// their console still has it) and emits `rating.submitted`.
    pub async fn rate_chat(
        &self,
        visitor: &str,
        ip: &str,
        chat: &str,
        rating: &str,
        comment: Option<String>,
    ) -> ChatResult<Rating> {
        if rating != "good" && rating != "bad" {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "rating must be good or bad",
            ));
        }
        let comment = clean_optional(comment, MAX_COMMENT_CHARS, "comment", true)?;
        self.limits.after_chat(false, visitor, ip).await?;
        let ticket = self.ticket_for(visitor, chat, "rated").await?;
        let stored = Rating {
            chat_id: chat.to_string(),
            queue: ticket.queue.clone(),
            agent_id: ticket.agent,
            rating: rating.to_string(),
            comment,
            rated_at: now_ms(),
        };
        if !self.store.insert_rating(&stored).await? {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                "this chat has already been rated",
            ));
        }
        self.metrics
            .ratings
            .with_label_values(&[&stored.queue, &stored.rating])
            .inc();
        if let Some(agent) = ticket.agent {
            self.tell(
                &format!("a:{agent}"),
                &ServerFrame::Rated {
                    chat_id: chat.to_string(),
                    rating: stored.rating.clone(),
                    comment: stored.comment.clone(),
                },
            )
            .await;
        }
        // Stored is what counts; an event Redis could not take now is logged, not retried.
        if let Err(e) = self.hook_rating_submitted(&stored).await {
            tracing::warn!(chat, error = %e.message, "rating.submitted not emitted");
        }
        Ok(stored)
    }

    /// E-mails the visitor-visible transcript of the visitor's ended chat to `email`.
    pub async fn mail_transcript(
        &self,
        visitor: &str,
        ip: &str,
        chat: &str,
        email: &str,
    ) -> ChatResult<()> {
        let email = email.trim();
        if email.chars().count() > 254 || !plausible_email(email) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "email is not a valid address",
            ));
        }
        let m = &self.settings.mail;
        if m.smtp_url.is_empty() {
            return Err(ChatError::new(
                ErrorCode::Unavailable,
                "transcripts cannot be e-mailed from this site",
            ));
        }
        self.limits.after_chat(true, visitor, ip).await?;
        let ticket = self.ticket_for(visitor, chat, "sent").await?;
        let entries = self.transcript_for_visitor(chat).await?;
        let body = transcript_text(&ticket, &entries);
        let failed = |why: String| {
            self.metrics
                .transcript_mails
                .with_label_values(&["failed"])
                .inc();
            tracing::warn!(chat, error = %why, "transcript e-mail not sent");
            ChatError::new(
                ErrorCode::Unavailable,
                "the e-mail could not be sent; please try again later",
            )
        };
        let message = Message::builder()
            .from(m.from.parse().map_err(|e| failed(format!("{e}")))?)
            .to(email.parse().map_err(|_| {
                ChatError::new(ErrorCode::InvalidField, "email is not a valid address")
            })?)
            .subject("Your chat transcript")
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| failed(format!("{e}")))?;
        let transport = super::mail::transport(m).map_err(|e| failed(format!("{e}")))?;
        match transport.send(message).await {
            Ok(r) if r.is_positive() => {
                self.metrics
                    .transcript_mails
                    .with_label_values(&["sent"])
                    .inc();
                Ok(())
            }
            Ok(r) => Err(failed(format!("refused: {}", r.code()))),
            Err(e) => Err(failed(format!("{e}"))),
        }
    }

    /// What the visitor saw of `chat`: from Redis while it is there, else from SQL once
    /// flushed (the flush commits before Redis forgets, so one of them has it).
    async fn transcript_for_visitor(&self, chat: &str) -> ChatResult<Vec<TranscriptEntry>> {
        let live = self.live_transcript(chat).await?;
        let entries = if live.is_empty() {
            match self.store.message_by_chat(chat).await? {
                Some(m) => m.entries,
                None => vec![],
            }
        } else {
            live
        };
        Ok(entries.into_iter().filter(visible_to_visitor).collect())
    }
}

/// Entries written for agents only (an internal note) never reach the visitor.
pub fn visible_to_visitor(e: &TranscriptEntry) -> bool {
    let internal = e
        .data
        .as_ref()
        .and_then(|d| d.get("internal"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    !internal && e.kind != "note"
}

/// The plain-text e-mail body: one line per entry, times in UTC.
fn transcript_text(t: &AfterChat, entries: &[TranscriptEntry]) -> String {
    let mut out = format!(
        "Here is the transcript of your chat ({}).\n\n",
        utc(t.ended_at, true)
    );
    for e in entries {
        let what = match e.event.as_str() {
            "file" => format!(
                "[file] {}",
                e.data
                    .as_ref()
                    .and_then(|d| d.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or(&e.text)
            ),
            "link" | "push_page" => {
                let url = e
                    .data
                    .as_ref()
                    .and_then(|d| d.get("url"))
                    .and_then(|u| u.as_str())
                    .unwrap_or("");
                if url.is_empty() || url == e.text {
                    e.text.clone()
                } else {
                    format!("{} <{url}>", e.text)
                }
            }
            _ => e.text.clone(),
        };
        if e.kind == "system" {
            out.push_str(&format!("[{}] -- {what}\n", utc(e.at, false)));
        } else {
            let who = if e.name.is_empty() {
                e.author.as_str()
            } else {
                e.name.as_str()
            };
            out.push_str(&format!("[{}] {who}: {what}\n", utc(e.at, false)));
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM UTC` (with the date) or `HH:MM`, from Unix milliseconds.
fn utc(ms: i64, date: bool) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (h, m) = (rem / 3600, rem % 3600 / 60);
    if !date {
        return format!("{h:02}:{m:02}");
    }
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        kind: &str,
        event: &str,
        text: &str,
        data: Option<serde_json::Value>,
    ) -> TranscriptEntry {
        TranscriptEntry {
            seq: "1-0".into(),
            kind: kind.into(),
            author: "agent".into(),
            name: "Bob".into(),
            text: text.into(),
            at: 0,
            event: event.into(),
            data,
            internal: false,
        }
    }

    #[test]
    fn dates_and_lines() {
        assert_eq!(utc(1_764_892_800_000, true), "2025-12-05 00:00 UTC");
        assert_eq!(utc(90_061_000, false), "01:01");
        let t = AfterChat {
            visitor: "v".into(),
            queue: "q".into(),
            agent: Some(1),
            ended_at: 0,
        };
        let shown = vec![
            entry("message", "", "hello", None),
            entry(
                "message",
                "file",
                "",
                Some(serde_json::json!({"name": "a.png"})),
            ),
        ];
        let text = transcript_text(&t, &shown);
        assert!(text.contains("[00:00] Bob: hello"), "{text}");
        assert!(text.contains("[file] a.png"), "{text}");
        let note = entry(
            "message",
            "",
            "secret",
            Some(serde_json::json!({"internal": true})),
        );
        assert!(!visible_to_visitor(&note));
        assert!(visible_to_visitor(&shown[0]));
    }
}
