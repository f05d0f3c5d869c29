//! Writing a chat's history from its stream to one connection: a `resume`'s replay, and the
//! catch-up that brings a followed chat up to date after the node's subscription may have
//! missed live entries (`chat::delivery`). Both read the stream a page at a time and write
//! each page to the socket before reading the next, so a long history never sits in memory
//! whole and a client that stops reading holds up only its own replay (until the write
//! timeout closes it).

use super::conn::{Conn, Flow};
use crate::chat::hub::{frames_for_entry, Encoded, Seq};
use crate::chat::{ChatError, Party};
use crate::protocol::{close_codes, ErrorCode, ServerFrame};
use axum::extract::ws::WebSocket;

/// Entries read from the stream and written per page.
pub(super) const REPLAY_PAGE: u64 = 100;

/// Whose entries a page writes.
#[derive(Clone, Copy)]
enum Pass<'a> {
    /// A `resume`: everything after the client's sequence number except what was already sent
    /// outside a resume.
    Resume { skip: &'a [Seq] },
    /// A catch-up: everything after what this connection delivered.
    CatchUp,
}

impl Conn {
    /// Replays a chat's history after `from` for a `resume`, skipping `skip`.
    pub(super) async fn replay(
        &mut self,
        socket: &mut WebSocket,
        chat: &str,
        from: Seq,
        skip: &[Seq],
    ) -> Result<Flow, ChatError> {
        self.pages(socket, chat, from, Pass::Resume { skip }).await
    }

    /// Brings `chat` up to date from its stream, then records the generation read before the
    /// first page. A stream read that fails closes the connection (4408) so its client resumes:
    /// delivering later live entries without the missed ones would leave a gap.
    pub(super) async fn catch_up(&mut self, socket: &mut WebSocket, chat: &str) -> Flow {
        let svc = self.gw.svc.clone();
        let generation = svc.hub.generation.settled();
        let Some(after) = self.chats.get(chat).map(|f| f.cursor.delivered()) else {
            return Flow::Continue;
        };
        match self.pages(socket, chat, after, Pass::CatchUp).await {
            Ok(Flow::Continue) => {
                if let Some(f) = self.chats.get_mut(chat) {
                    f.cursor.caught_up(generation);
                }
                Flow::Continue
            }
            Ok(close) => close,
            Err(e) => {
                tracing::warn!(chat, error = %e.message, "catching up from the stream failed");
                Flow::Close(close_codes::SLOW_CONSUMER, "catching up failed; resume")
            }
        }
    }

    /// Catches up every followed chat that is behind the node's generation (`Out::CatchUp`).
    /// An agent's control messages may have been lost in the same lapse: its session is checked
    /// again, and chats it no longer holds are dropped.
    pub(super) async fn catch_up_behind(&mut self, socket: &mut WebSocket) -> Flow {
        if let Flow::Close(c, r) = self.recheck_agent(socket).await {
            return Flow::Close(c, r);
        }
        let now = self.gw.svc.hub.generation.current();
        let behind: Vec<String> = self
            .chats
            .iter()
            .filter(|(_, f)| f.cursor.caught_up_to() < now)
            .map(|(chat, _)| chat.clone())
            .collect();
        for chat in behind {
            if let Flow::Close(c, r) = self.catch_up(socket, &chat).await {
                return Flow::Close(c, r);
            }
        }
        Flow::Continue
    }

    /// What a lost `revoked`, `changed` or `unfollow` control message would have done
    /// (`chat::sessions`): close a connection whose session ended (4401) or whose agent record
    /// changed (4409: it reconnects with the new settings), stop following a chat that was
    /// transferred away (`chat_unfollowed`). A check that fails (Redis or the store down)
    /// changes nothing.
    async fn recheck_agent(&mut self, socket: &mut WebSocket) -> Flow {
        let Party::Agent { id, session, .. } = &self.party else {
            return Flow::Continue;
        };
        let (id, session) = (*id, *session);
        let svc = self.gw.svc.clone();
        if let Ok(false) = svc.agent_session_valid(id, session).await {
            return Flow::Close(close_codes::UNAUTHORIZED, "session ended; log in again");
        }
        if let Ok(Some(agent)) = svc.store.agent(id).await {
            if Party::agent(&agent, session) != self.party {
                return Flow::Close(
                    close_codes::AGENT_CHANGED,
                    "agent settings changed; reconnect",
                );
            }
        }
        let chats: Vec<String> = self.chats.keys().cloned().collect();
        for chat in chats {
            match svc.authorise(&self.party, &chat).await {
                Err(e) if e.code == ErrorCode::Forbidden => {
                    self.chats.remove(&chat);
                    svc.hub
                        .unfollow(&svc.redis.keys.chat_channel(&chat), self.id)
                        .await;
                    let gone = ServerFrame::ChatUnfollowed {
                        chat_id: chat,
                        reason: "transferred".into(),
                    };
                    if let Flow::Close(c, r) = self.feed(socket, &Encoded::new(gone)).await {
                        return Flow::Close(c, r);
                    }
                }
                _ => {}
            }
        }
        Flow::Continue
    }

    /// Writes the stream's entries after `after`, `REPLAY_PAGE` at a time, each page flushed
    /// before the next is read.
    async fn pages(
        &mut self,
        socket: &mut WebSocket,
        chat: &str,
        mut after: Seq,
        pass: Pass<'_>,
    ) -> Result<Flow, ChatError> {
        let svc = self.gw.svc.clone();
        loop {
            let page = svc.history_page(chat, &after.id(), REPLAY_PAGE).await?;
            let full = page.len() as u64 == REPLAY_PAGE;
            for entry in page {
                let Some(seq) = Seq::parse(&entry.seq) else {
                    continue;
                };
                after = seq;
                let Some(followed) = self.chats.get_mut(chat) else {
                    return Ok(Flow::Continue);
                };
                match pass {
                    Pass::Resume { skip } => {
                        if skip.contains(&seq) {
                            continue;
                        }
                        followed.cursor.replayed(seq);
                    }
                    Pass::CatchUp => {
                        if !followed.cursor.wants(seq) {
                            continue;
                        }
                        followed.cursor.sent(seq);
                        svc.metrics.entries_out.inc();
                    }
                }
                if entry.is_internal() && matches!(self.party, Party::Visitor { .. }) {
                    // A whisper: the cursor moved past it, a visitor is never sent it.
                    continue;
                }
                for f in frames_for_entry(chat, entry) {
                    if let Flow::Close(c, r) = self.feed(socket, &f).await {
                        return Ok(Flow::Close(c, r));
                    }
                }
            }
            if let Flow::Close(c, r) = self.flush(socket).await {
                return Ok(Flow::Close(c, r));
            }
            if !full {
                return Ok(Flow::Continue);
            }
        }
    }
}
