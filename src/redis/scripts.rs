//! The Lua scripts, loaded once per node and run with EVALSHA. Routing scripts get
//! `common.lua` and `events.lua` (webhook events) prepended, transcript scripts
//! `chat_common.lua`, presence scripts both `common.lua` and `presence_common.lua`.

use fred::prelude::*;
use fred::types::scripts::Script;

macro_rules! routing {
    ($file:literal) => {
        Script::from_lua(concat!(
            include_str!("lua/common.lua"),
            "\n",
            include_str!("lua/events.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}
macro_rules! presence {
    ($file:literal) => {
        Script::from_lua(concat!(
            include_str!("lua/common.lua"),
            "\n",
            include_str!("lua/presence_common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}
macro_rules! transcript {
    ($file:literal) => {
        Script::from_lua(concat!(
            include_str!("lua/chat_common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

#[derive(Clone)]
pub struct Scripts {
    pub agent_status: Script,
    pub request: Script,
    pub route: Script,
    pub requeue: Script,
    pub accept: Script,
    pub end: Script,
    pub decide: Script,
    pub forget: Script,
    pub transfer: Script,
    pub take_over: Script,
    pub claim_timers: Script,
    pub timer_done: Script,
    pub chat_join: Script,
    pub chat_send: Script,
    pub chat_end: Script,
    pub chat_leave: Script,
    pub visitor_page: Script,
    pub visitor_set: Script,
    pub visitor_typed: Script,
    pub visitor_leave: Script,
    pub visitor_touch: Script,
    pub invite: Script,
    pub invite_accept: Script,
    pub chat_invite: Script,
    pub presence_set: Script,
    pub presence_beat: Script,
    pub presence_check: Script,
    pub agent_presence: Script,
    pub pick: Script,
    pub waiting: Script,
    pub offline_limit: Script,
    pub session_raise: Script,
    pub queue_rename: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            agent_status: routing!("agent_status.lua"),
            request: routing!("request.lua"),
            queue_rename: routing!("queue_rename.lua"),
            route: routing!("route.lua"),
            requeue: routing!("requeue.lua"),
            accept: routing!("accept.lua"),
            end: routing!("end.lua"),
            decide: routing!("decide.lua"),
            forget: routing!("forget.lua"),
            transfer: routing!("transfer.lua"),
            take_over: routing!("take_over.lua"),
            claim_timers: Script::from_lua(include_str!("lua/claim_timers.lua")),
            timer_done: Script::from_lua(include_str!("lua/timer_done.lua")),
            chat_join: transcript!("chat_join.lua"),
            chat_send: transcript!("chat_send.lua"),
            chat_end: transcript!("chat_end.lua"),
            chat_leave: transcript!("chat_leave.lua"),
            visitor_page: routing!("visitor_page.lua"),
            visitor_set: routing!("visitor_set.lua"),
            visitor_typed: routing!("visitor_typed.lua"),
            visitor_leave: routing!("visitor_leave.lua"),
            visitor_touch: routing!("visitor_touch.lua"),
            invite: routing!("invite.lua"),
            invite_accept: routing!("invite_accept.lua"),
            chat_invite: transcript!("chat_invite.lua"),
            presence_set: presence!("presence_set.lua"),
            presence_beat: presence!("presence_beat.lua"),
            presence_check: presence!("presence_check.lua"),
            agent_presence: presence!("agent_presence.lua"),
            pick: routing!("pick.lua"),
            waiting: Script::from_lua(include_str!("lua/waiting.lua")),
            offline_limit: Script::from_lua(include_str!("lua/offline_limit.lua")),
            session_raise: Script::from_lua(include_str!("lua/session_raise.lua")),
        }
    }

    /// Loads every script so the first EVALSHA does not miss (on a cluster, on every primary).
    pub async fn load_all(&self, client: &Client) -> FredResult<()> {
        for s in [
            &self.agent_status,
            &self.request,
            &self.route,
            &self.requeue,
            &self.accept,
            &self.end,
            &self.decide,
            &self.forget,
            &self.transfer,
            &self.take_over,
            &self.claim_timers,
            &self.timer_done,
            &self.chat_join,
            &self.chat_send,
            &self.chat_leave,
            &self.chat_end,
            &self.visitor_page,
            &self.visitor_set,
            &self.visitor_typed,
            &self.visitor_leave,
            &self.visitor_touch,
            &self.invite,
            &self.invite_accept,
            &self.chat_invite,
            &self.presence_set,
            &self.presence_beat,
            &self.presence_check,
            &self.agent_presence,
            &self.pick,
            &self.waiting,
            &self.offline_limit,
            &self.session_raise,
        ] {
            s.load(client).await?;
        }
        Ok(())
    }
}
