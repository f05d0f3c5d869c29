//! Site visitors and proactive chat. (Being built: see the signatures below.)

use super::hub::{ConnId, Follower};
use super::{ChatAccess, ChatError, ChatResult, ClientInfo, Party, Service};
use crate::config::Settings;
use crate::protocol::{ErrorCode, ServerFrame};
use std::sync::Arc;
use tokio::sync::watch;

pub struct SiteVisitors {}

impl SiteVisitors {
    pub fn new(_s: &Settings) -> SiteVisitors {
        SiteVisitors {}
    }
}

fn pending() -> ChatError {
    ChatError::new(ErrorCode::Internal, "not available yet")
}

/// Background work of the site-visitors list (batching changes), run by every node.
pub async fn run(_svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let _ = stop.changed().await;
}

impl Service {
    pub async fn page_view(
        &self,
        _party: &Party,
        _client: &ClientInfo,
        _url: &str,
        _title: Option<&str>,
        _referrer: Option<&str>,
    ) -> ChatResult<()> {
        Err(pending())
    }
    pub async fn watch_visitors(
        &self,
        _party: &Party,
        _conn: ConnId,
        _f: Follower,
    ) -> ChatResult<ServerFrame> {
        Err(pending())
    }
    pub async fn unwatch_visitors(&self, _conn: ConnId) {}
    pub async fn visitor_left(&self, _visitor: &str) -> ChatResult<()> {
        Ok(())
    }
    pub async fn invite(
        &self,
        _party: &Party,
        _visitor: &str,
        _message: Option<String>,
    ) -> ChatResult<()> {
        Err(pending())
    }
    pub async fn accept_invitation(
        &self,
        _party: &Party,
        _conn: ConnId,
        _f: Follower,
        _chat: &str,
    ) -> ChatResult<ChatAccess> {
        Err(pending())
    }
    pub async fn decline_invitation(&self, _party: &Party, _chat: &str) -> ChatResult<()> {
        Err(pending())
    }
    pub async fn invitation_expired(&self, _chat: &str) -> ChatResult<()> {
        Ok(())
    }
}
