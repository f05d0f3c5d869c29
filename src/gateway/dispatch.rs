//! A connection's client frames: rate limit and decode each one, hand it to the chat service,
//! keep the connection's view of the chats it follows, and turn a refusal into an `error`
//! frame (closing the connection after too many in a row).

use super::conn::{Conn, Flow, Followed};
use crate::chat::hub::Seq;
use crate::chat::{ChatAccess, ChatError, ChatRequest, LeftMessage, Party, Service};
use crate::protocol::{close_codes, decode_client, ClientFrame, Encoding, ErrorCode, ServerFrame};
use axum::extract::ws::WebSocket;
use std::collections::HashMap;
use std::future::Future;

impl Conn {
    pub(super) async fn on_frame(
        &mut self,
        socket: &mut WebSocket,
        bytes: &[u8],
        encoding: Encoding,
    ) -> Flow {
        let metrics = self.gw.svc.metrics.clone();
        let limit = self.gw.svc.settings.limits.max_frame_bytes;
        // Decoded before the connection's rate is checked (the size is bounded already), so
        // a refusal names the frame it refuses: a client retries exactly its unacknowledged
        // sends instead of waiting for a reconnect.
        let result = match decode_client(bytes, encoding, limit) {
            Ok(frame) => {
                if !self.rate.allow() {
                    self.gw.svc.limits.refused("frames_connection");
                    Err(ChatError::limited(
                        ErrorCode::RateLimited,
                        "too many frames on this connection; slow down",
                        self.rate.retry_after_ms(),
                    ))
                } else {
                    // The same rate per identity over all its sockets and nodes (a keep-alive
                    // `ping` costs nothing and is left out).
                    let allowed = if matches!(frame, ClientFrame::Ping { .. }) {
                        Ok(())
                    } else {
                        self.gw.svc.limits.frame(&self.party).await
                    };
                    match allowed {
                        Ok(()) => self.dispatch(socket, frame).await,
                        Err(e) => Err(e),
                    }
                }
            }
            Err(e) => Err(ChatError::new(e.code(), e.to_string())),
        };
        match result {
            Ok(flow) => {
                self.errors_in_a_row = 0;
                flow
            }
            Err(e) => {
                // The refused frame is decoded a second time for its `ref` (it went to
                // `dispatch`): refusals are rare, and an accepted frame then copies nothing.
                let reference = decode_client(bytes, encoding, limit)
                    .ok()
                    .as_ref()
                    .and_then(frame_ref);
                metrics
                    .frames_rejected
                    .with_label_values(&[e.code.name()])
                    .inc();
                self.errors_in_a_row += 1;
                if self.errors_in_a_row > self.gw.svc.settings.limits.max_consecutive_errors {
                    return Flow::Close(close_codes::TOO_MANY_ERRORS, "too many refused frames");
                }
                let mut frame = ServerFrame::error(e.code, e.message, reference);
                if let ServerFrame::Error { retry_after_ms, .. } = &mut frame {
                    *retry_after_ms = e.retry_after_ms;
                }
                self.reply(socket, frame).await
            }
        }
    }

    async fn dispatch(
        &mut self,
        socket: &mut WebSocket,
        frame: ClientFrame,
    ) -> Result<Flow, ChatError> {
        let svc = self.gw.svc.clone();
        // Borrowed, not cloned: an agent's party holds its name and queues.
        let party = &self.party;
        let reply = match frame {
            ClientFrame::Ping { nonce } => ServerFrame::Pong { nonce },
            ClientFrame::RequestChat {
                name,
                email,
                question,
                queue,
            } => {
                if let Party::Visitor { id } = party {
                    svc.limits.chat_request(id, &self.client.ip).await?;
                }
                let generation = svc.hub.generation.settled();
                let (access, frame, chat) = svc
                    .request_chat(
                        party,
                        self.id,
                        self.follower.clone(),
                        ChatRequest {
                            name,
                            email,
                            question,
                            queue,
                        },
                    )
                    .await?;
                self.chats
                    .entry(chat)
                    .or_insert(Followed::new(access, generation));
                frame
            }
            ClientFrame::Resume { chat_id, last_seq } => {
                let generation = svc.hub.generation.settled();
                let access = svc
                    .resume(party, self.id, self.follower.clone(), &chat_id, &last_seq)
                    .await?;
                let from = Seq::parse(&last_seq).unwrap_or_default();
                if access.read_only {
                    self.unfollow_read_only_except(&chat_id).await;
                }
                let followed = self
                    .chats
                    .entry(chat_id.clone())
                    .or_insert_with(|| Followed::new(access.clone(), generation));
                followed.access = access;
                let skip = followed.cursor.begin_resume(from);
                // Written a page at a time; the `resumed` reply below follows the last page.
                if let Flow::Close(c, r) = self.replay(socket, &chat_id, from, &skip).await? {
                    return Ok(Flow::Close(c, r));
                }
                if let Some(f) = self.chats.get_mut(&chat_id) {
                    f.cursor.caught_up(generation);
                }
                // The highest sequence this connection has now delivered, replayed or live.
                let last_seq = self
                    .chats
                    .get(&chat_id)
                    .map(|f| f.cursor.delivered().id())
                    .unwrap_or_default();
                ServerFrame::Resumed {
                    chat_id,
                    last_seq,
                    epoch: svc.epoch.current(),
                }
            }
            ClientFrame::Send {
                chat_id,
                client_msg_id,
                text,
            } => {
                let access = self.access(&chat_id)?;
                svc.send(party, self.id, access, chat_id, client_msg_id, &text)
                    .await?
            }
            ClientFrame::End { chat_id } => {
                svc.end(party, &chat_id).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::SetStatus { status } => {
                svc.set_status(party, status).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Accept { chat_id } => {
                let joined = svc.accept(party, self.id, self.follower.clone(), &chat_id);
                follow_joined(&mut self.chats, &svc, chat_id.clone(), joined).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Pick { chat_id } => {
                let joined = svc.pick(party, self.id, self.follower.clone(), &chat_id);
                follow_joined(&mut self.chats, &svc, chat_id.clone(), joined).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::WatchQueue { queue } => {
                svc.watch_queue(party, self.id, self.follower.clone(), queue)
                    .await?
            }
            ClientFrame::LeaveMessage {
                queue,
                name,
                email,
                message,
                page_url,
                chat_id,
            } => {
                let id = svc
                    .leave_message(
                        party,
                        &self.client,
                        LeftMessage {
                            queue,
                            name,
                            email,
                            message,
                            page_url,
                            chat_id,
                        },
                    )
                    .await?;
                ServerFrame::MessageLeft { id }
            }
            ClientFrame::Deny { chat_id } => {
                svc.deny(party, &chat_id).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Close { chat_id } => {
                if let Party::Visitor { .. } = party {
                    return Err(ChatError::new(
                        ErrorCode::Forbidden,
                        "only agents close offers; visitors send end",
                    ));
                }
                svc.close(party, &chat_id).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Decide {
                chat_id,
                decision,
                interaction_id,
            } => {
                let f = svc
                    .decide(party, &chat_id, decision, interaction_id)
                    .await?;
                if self.chats.remove(&chat_id).is_some() {
                    svc.hub
                        .unfollow(&svc.redis.keys.chat_channel(&chat_id), self.id)
                        .await;
                }
                f
            }
            ClientFrame::SendLink {
                chat_id,
                client_msg_id,
                url,
                title,
            } => {
                let access = self.access(&chat_id)?;
                svc.send_link(
                    party,
                    self.id,
                    access,
                    &chat_id,
                    &client_msg_id,
                    &url,
                    title.as_deref(),
                )
                .await?
            }
            ClientFrame::PushPage {
                chat_id,
                client_msg_id,
                url,
            } => {
                let access = self.access(&chat_id)?;
                svc.push_page(party, self.id, access, &chat_id, &client_msg_id, &url)
                    .await?
            }
            ClientFrame::Typing { chat_id, typing } => {
                self.refuse_read_only(&chat_id)?;
                svc.typing(party, self.id, &chat_id, typing).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Receipt {
                chat_id,
                seq,
                state,
            } => {
                self.refuse_read_only(&chat_id)?;
                svc.receipt(party, self.id, &chat_id, &seq, state).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Transfer {
                chat_id,
                to_agent,
                to_queue,
                note,
            } => {
                let target = crate::chat::TransferTo {
                    agent: to_agent,
                    queue: to_queue,
                    note: note.unwrap_or_default(),
                };
                svc.transfer(party, self.id, &chat_id, target).await?;
                self.chats.remove(&chat_id);
                return Ok(Flow::Continue);
            }
            ClientFrame::PageView {
                url,
                title,
                referrer,
            } => {
                svc.page_view(
                    party,
                    &self.client,
                    &url,
                    title.as_deref(),
                    referrer.as_deref(),
                )
                .await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::Identify {
                email,
                name,
                signature,
            } => {
                svc.identify(party, &email, name.as_deref(), &signature)
                    .await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::WatchVisitors { limit, rows } => {
                svc.watch_visitors(
                    party,
                    self.id,
                    self.follower.clone(),
                    limit,
                    rows.as_deref(),
                )
                .await?
            }
            ClientFrame::ListVisitors { after, limit } => {
                svc.list_visitors(party, self.id, &after, limit).await?
            }
            ClientFrame::ViewVisitors { ids } => svc.view_visitors(party, self.id, ids).await?,
            ClientFrame::VisitorHistory { visitor_id } => {
                svc.visitor_history(party, &visitor_id).await?
            }
            ClientFrame::UnwatchVisitors => {
                svc.unwatch_visitors(self.id).await;
                return Ok(Flow::Continue);
            }
            ClientFrame::Invite {
                visitor_id,
                message,
            } => {
                svc.invite(party, &visitor_id, message).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::AcceptInvitation { chat_id } => {
                let joined = svc.accept_invitation(party, self.id, self.follower.clone(), &chat_id);
                follow_joined(&mut self.chats, &svc, chat_id.clone(), joined).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::DeclineInvitation { chat_id } => {
                svc.decline_invitation(party, &chat_id).await?;
                return Ok(Flow::Continue);
            }
            ClientFrame::WatchMonitor => {
                svc.watch_monitor(party, self.id, self.follower.clone())
                    .await?
            }
            ClientFrame::UnwatchMonitor => {
                svc.unwatch_monitor(self.id);
                return Ok(Flow::Continue);
            }
            ClientFrame::Whisper {
                chat_id,
                client_msg_id,
                text,
            } => svc.whisper(party, &chat_id, &client_msg_id, &text).await?,
            ClientFrame::TakeOver { chat_id } => {
                let generation = svc.hub.generation.settled();
                let (access, frame) = svc
                    .take_over(party, self.id, self.follower.clone(), &chat_id)
                    .await?;
                // A read-only follow becomes a full one; its delivered sequence stays.
                self.chats
                    .entry(chat_id)
                    .and_modify(|f| f.access = access.clone())
                    .or_insert(Followed::new(access, generation));
                frame
            }
        };
        Ok(self.reply(socket, reply).await)
    }

    /// The access this connection writes into `chat` with: it must follow the chat, and not
    /// read-only.
    fn access(&self, chat: &str) -> Result<&ChatAccess, ChatError> {
        self.refuse_read_only(chat)?;
        self.chats.get(chat).map(|f| &f.access).ok_or_else(|| {
            ChatError::new(ErrorCode::Forbidden, "resume the chat before sending to it")
        })
    }

    /// A connection follows at most one chat read-only (the one a supervisor has open): opening
    /// another stops following the previous one, so a long monitoring session does not pile up
    /// follows.
    async fn unfollow_read_only_except(&mut self, keep: &str) {
        let others: Vec<String> = self
            .chats
            .iter()
            .filter(|(id, f)| f.access.read_only && id.as_str() != keep)
            .map(|(id, _)| id.clone())
            .collect();
        let svc = self.gw.svc.clone();
        for id in others {
            self.chats.remove(&id);
            svc.hub
                .unfollow(&svc.redis.keys.chat_channel(&id), self.id)
                .await;
        }
    }

    /// A supervisor following a chat read-only writes nothing into it (no messages, typing or
    /// receipts) until they take it over.
    fn refuse_read_only(&self, chat: &str) -> Result<(), ChatError> {
        if self.chats.get(chat).is_some_and(|f| f.access.read_only) {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "you follow this chat read-only; take it over to write",
            ));
        }
        Ok(())
    }
}

/// The chat or message a refused frame was about, echoed as `ref`.
fn frame_ref(f: &ClientFrame) -> Option<String> {
    match f {
        ClientFrame::Send { client_msg_id, .. } => Some(client_msg_id.clone()),
        ClientFrame::Resume { chat_id, .. }
        | ClientFrame::End { chat_id }
        | ClientFrame::Accept { chat_id }
        | ClientFrame::Pick { chat_id }
        | ClientFrame::Deny { chat_id }
        | ClientFrame::Close { chat_id }
        | ClientFrame::Decide { chat_id, .. }
        | ClientFrame::Typing { chat_id, .. }
        | ClientFrame::Receipt { chat_id, .. }
        | ClientFrame::Transfer { chat_id, .. }
        | ClientFrame::AcceptInvitation { chat_id }
        | ClientFrame::DeclineInvitation { chat_id }
        | ClientFrame::TakeOver { chat_id } => Some(chat_id.clone()),
        ClientFrame::SendLink { client_msg_id, .. }
        | ClientFrame::Whisper { client_msg_id, .. }
        | ClientFrame::PushPage { client_msg_id, .. } => Some(client_msg_id.clone()),
        ClientFrame::Invite { visitor_id, .. } | ClientFrame::VisitorHistory { visitor_id } => {
            Some(visitor_id.clone())
        }
        _ => None,
    }
}

/// Follows the chat that `joined` (an accepted offer or invitation, a picked request) gives a
/// connection (its `chats`), with the node's subscription generation read before `joined` runs
/// (see `Followed::new`). A function of the connection's chats alone, so `joined` may borrow
/// the connection's party meanwhile.
async fn follow_joined(
    chats: &mut HashMap<String, Followed>,
    svc: &Service,
    chat_id: String,
    joined: impl Future<Output = Result<ChatAccess, ChatError>>,
) -> Result<(), ChatError> {
    let generation = svc.hub.generation.settled();
    let access = joined.await?;
    chats
        .entry(chat_id)
        .or_insert(Followed::new(access, generation));
    Ok(())
}
