//! The Lua scripts, loaded once per node and run with EVALSHA. Routing scripts get
//! `common.lua` prepended, transcript scripts `chat_common.lua`.

use fred::prelude::*;
use fred::types::scripts::Script;

macro_rules! routing {
    ($file:literal) => {
        Script::from_lua(concat!(
            include_str!("lua/common.lua"),
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
    pub claim_timers: Script,
    pub timer_done: Script,
    pub chat_join: Script,
    pub chat_send: Script,
    pub chat_end: Script,
    pub visitor_page: Script,
    pub visitor_set: Script,
    pub visitor_typed: Script,
    pub visitor_leave: Script,
    pub visitor_touch: Script,
    pub invite: Script,
    pub invite_accept: Script,
    pub chat_invite: Script,
    pub session_raise: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            agent_status: routing!("agent_status.lua"),
            request: routing!("request.lua"),
            route: routing!("route.lua"),
            requeue: routing!("requeue.lua"),
            accept: routing!("accept.lua"),
            end: routing!("end.lua"),
            decide: routing!("decide.lua"),
            forget: routing!("forget.lua"),
            transfer: routing!("transfer.lua"),
            claim_timers: Script::from_lua(include_str!("lua/claim_timers.lua")),
            timer_done: Script::from_lua(include_str!("lua/timer_done.lua")),
            chat_join: transcript!("chat_join.lua"),
            chat_send: transcript!("chat_send.lua"),
            chat_end: transcript!("chat_end.lua"),
            visitor_page: routing!("visitor_page.lua"),
            visitor_set: routing!("visitor_set.lua"),
            visitor_typed: routing!("visitor_typed.lua"),
            visitor_leave: routing!("visitor_leave.lua"),
            visitor_touch: routing!("visitor_touch.lua"),
            invite: routing!("invite.lua"),
            invite_accept: routing!("invite_accept.lua"),
            chat_invite: transcript!("chat_invite.lua"),
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
            &self.claim_timers,
            &self.timer_done,
            &self.chat_join,
            &self.chat_send,
            &self.chat_end,
            &self.visitor_page,
            &self.visitor_set,
            &self.visitor_typed,
            &self.visitor_leave,
            &self.visitor_touch,
            &self.invite,
            &self.invite_accept,
            &self.chat_invite,
            &self.session_raise,
        ] {
            s.load(client).await?;
        }
        Ok(())
    }
}
