//! Site visitors: who is on the site now, for agents. Every page view updates the visitor's
//! record in Redis (one script); the visitor's `grace:V` presence timer decides when the visit
//! is over (`visitor_left`). The record keeps only what the list shows: the current page (URL
//! and title cut to `abuse.visitor_url_chars` / `visitor_title_chars`) and the number of page
//! views; the page history (the last `abuse.visitor_pages_kept`) is read on demand.
//!
//! Each node collects the changes made through it and publishes them every `FLUSH_EVERY` as
//! one `visitors_changed` frame on one channel; a node subscribes to that channel only while
//! one of its agents watches, and `visitor_list` hands the changes to its watchers.
//!
//! Change kinds: `arrive`, `page` and `update` carry the whole record; `leave` carries none.
//! Batches of different nodes may reach a watcher in either order, so clients keep the record
//! with the highest `last_seen`, which the scripts keep strictly increasing within a visit.
//! "New visitors only" is a client-side filter on the `new` flag.

use super::messages::safe_url;
use super::{now_ms, ChatError, ChatResult, ClientInfo, Party, Service};
use crate::config::Settings;
use crate::protocol::{ErrorCode, ServerFrame, SiteVisitor, VisitorChange, VisitorRow};
use crate::redis::VisitorRecord;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often a node publishes its batch of changes.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Changes a node holds between two flushes; beyond it new changes are dropped (counted and
/// logged) until Redis takes the batch again. Watchers re-watch to resynchronise.
const MAX_BATCH: usize = 20_000;
/// Changes per published frame, so no single frame grows without bound.
const MAX_PER_FRAME: usize = 500;
/// How often a node samples the number of visitors for the gauge.
const SAMPLE_EVERY_MS: i64 = 5_000;

pub struct SiteVisitors {
    /// Changes made through this node since the last flush, in order.
    batch: Mutex<Vec<VisitorChange>>,
    /// Changes lost to the `MAX_BATCH` bound since the last flush.
    dropped: AtomicU64,
}

impl SiteVisitors {
    pub fn new(_s: &Settings) -> SiteVisitors {
        SiteVisitors {
            batch: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        }
    }

    fn push(&self, change: VisitorChange) {
        let mut b = self.batch.lock().unwrap();
        if b.len() >= MAX_BATCH {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            b.push(change);
        }
    }

    fn take(&self) -> Vec<VisitorChange> {
        std::mem::take(&mut *self.batch.lock().unwrap())
    }
}

/// Background work of the site-visitors list, run by every node: publishes this node's batch
/// of changes every `FLUSH_EVERY` and samples the visitor count.
pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sample = 0i64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {
                svc.flush_visitor_changes().await;
                return;
            }
        }
        svc.flush_visitor_changes().await;
        let now = now_ms();
        if now - last_sample >= SAMPLE_EVERY_MS {
            last_sample = now;
            if let Ok(n) = svc.redis.visitor_count().await {
                svc.metrics.site_visitors.set(n as i64);
            }
        }
    }
}

/// The agents' view of a stored visit.
pub(super) fn site_visitor(id: &str, r: &VisitorRecord) -> SiteVisitor {
    let g = |k: &str| r.fields.get(k).cloned().unwrap_or_default();
    let n = |k: &str| r.fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    SiteVisitor {
        visitor_id: id.to_string(),
        email: g("email"),
        name: g("name"),
        url: g("url"),
        title: g("title"),
        page_count: n("pages") as u64,
        country: g("country"),
        ip: g("ip"),
        started_at: n("started_at"),
        last_seen: n("last_seen"),
        chatting: r.chats > 0,
        new: g("new") == "1",
        email_verified: g("email_verified") == "1",
    }
}

/// A page title as stored: control characters become spaces, cut at `max` characters.
fn clean_title(t: Option<&str>, max: usize) -> String {
    t.unwrap_or("")
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

/// The first `max` characters of `s`.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => s[..at].to_string(),
        None => s.to_string(),
    }
}

impl Service {
    fn visitors_channel(&self) -> String {
        self.redis.keys.visitors_channel()
    }

    fn visitor_change(&self, kind: &str, visitor: &str, record: Option<SiteVisitor>) {
        self.visitors.push(VisitorChange {
            kind: kind.into(),
            visitor_id: visitor.into(),
            visitor: record.map(VisitorRow::Full),
        });
    }

    /// Publishes this node's pending changes (one frame per `MAX_PER_FRAME` changes).
    pub(crate) async fn flush_visitor_changes(&self) {
        let dropped = self.visitors.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "site-visitor changes dropped at the batch bound; watchers should re-watch"
            );
        }
        let mut changes = self.visitors.take();
        if changes.is_empty() {
            return;
        }
        let channel = self.visitors_channel();
        while !changes.is_empty() {
            let rest = changes.split_off(changes.len().min(MAX_PER_FRAME));
            let count = changes.len() as u64;
            let frame = ServerFrame::VisitorsChanged { changes };
            let payload = serde_json::to_string(&frame).expect("server frames serialise");
            match self.redis.publish(&channel, payload).await {
                Ok(()) => {
                    self.metrics.visitor_changes.inc_by(count);
                    self.metrics.visitor_batches.inc();
                }
                Err(e) => {
                    self.metrics.redis_errors.inc();
                    tracing::warn!(error = %e, count, "site-visitor changes not published");
                }
            }
            changes = rest;
        }
    }

    /// "New": no contact in the store with this visitor id, nor with this e-mail (one the site
    /// vouched for: a typed e-mail says nothing about who is there). None when the store
    /// cannot tell now (the flag is computed again later).
    async fn is_new_visitor(&self, visitor: &str, email: Option<&str>) -> Option<bool> {
        let mut lookups = vec![None];
        if let Some(e) = email.filter(|e| !e.is_empty()) {
            lookups.push(Some(e));
        }
        for email in lookups {
            match self.store.contact_for(visitor, email).await {
                Ok(Some(_)) => return Some(false),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "contact lookup failed; the new flag waits");
                    return None;
                }
            }
        }
        Some(true)
    }

    pub async fn page_view(
        &self,
        party: &Party,
        client: &ClientInfo,
        url: &str,
        title: Option<&str>,
        referrer: Option<&str>,
    ) -> ChatResult<()> {
        let Party::Visitor { id } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors report page views",
            ));
        };
        let a = &self.settings.abuse;
        let url = cut(&safe_url(url)?, a.visitor_url_chars as usize);
        let title = clean_title(title, a.visitor_title_chars as usize);
        // Shown to agents as a link, so only http(s); anything else is left out, not refused.
        let referrer = referrer
            .filter(|r| !r.trim().is_empty())
            .and_then(|r| safe_url(r).ok())
            .map(|r| cut(&r, a.visitor_url_chars as usize))
            .unwrap_or_default();
        self.limits.page_view(id, &client.ip).await?;
        let (kind, mut record) = self
            .redis
            .visitor_page(
                id,
                now_ms(),
                &url,
                &title,
                &referrer,
                &client.ip,
                &client.country,
                &client.browser,
                a.visitor_pages_kept as usize,
            )
            .await?;
        if !record.fields.contains_key("new") {
            let verified = record.fields.get("email_verified").map(String::as_str) == Some("1");
            let email = record.fields.get("email").filter(|_| verified).cloned();
            if let Some(new) = self.is_new_visitor(id, email.as_deref()).await {
                let flag = if new { "1" } else { "0" };
                if self.redis.visitor_set(id, vec![("new", flag)]).await? {
                    record.fields.insert("new".into(), flag.into());
                }
            }
        }
        self.visitor_change(&kind, id, Some(site_visitor(id, &record)));
        if let Some(chat) = record.fields.get("invite").filter(|c| !c.is_empty()) {
            self.retell_invitation(id, chat).await;
        }
        Ok(())
    }

    /// The organisation's site vouches for its logged-in visitor's e-mail (signed with
    /// `auth.identify_secret`): the site-visitors list shows it as verified, "new" is decided
    /// by it, and the visitor's next chat carries it (and is filed under its contact).
    pub async fn identify(
        &self,
        party: &Party,
        email: &str,
        name: Option<&str>,
        signature: &str,
    ) -> ChatResult<()> {
        let Party::Visitor { id } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors identify",
            ));
        };
        let secret = &self.settings.auth.identify_secret;
        if secret.is_empty() {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "identify is not enabled on this site",
            ));
        }
        let email = email.trim();
        if email.is_empty()
            || email.len() > 254
            || !email.contains('@')
            || email.contains(char::is_whitespace)
        {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "email is not a valid address",
            ));
        }
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control)) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "name must be 1-100 printable characters",
            ));
        }
        if !crate::chat::identity::identify_signature_ok(secret, email, signature) {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "the signature does not match this e-mail",
            ));
        }
        let mut fields = vec![("email", email), ("email_verified", "1")];
        if let Some(n) = name {
            fields.push(("name", n));
        }
        let new = self.is_new_visitor(id, Some(email)).await;
        if let Some(new) = new {
            fields.push(("new", if new { "1" } else { "0" }));
        }
        // Watchers see the verified e-mail (nothing to show when the visitor is gone).
        match self.redis.visitor_set(id, fields).await {
            Ok(true) => self.visitor_chats_changed(id).await,
            Ok(false) => {}
            Err(e) => self.record_not_written(e),
        }
        Ok(())
    }

    /// The visitor asked for a chat: the record shows the pre-chat form's name and e-mail as
    /// typed (unverified; they change nothing about contacts or "new"), unless the site
    /// vouched for an e-mail already, and watchers see the visitor chatting. Best effort: the
    /// chat request goes on regardless.
    pub(crate) async fn visitor_typed(
        &self,
        visitor: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) {
        if name.is_some() || email.is_some() {
            let typed = self
                .redis
                .visitor_typed(visitor, name.unwrap_or(""), email.unwrap_or(""));
            if let Err(e) = typed.await {
                return self.record_not_written(e);
            }
        }
        self.visitor_chats_changed(visitor).await;
    }

    fn record_not_written(&self, e: crate::redis::RedisError) {
        self.metrics.redis_errors.inc();
        tracing::warn!(error = %e, "visitor record not updated");
    }

    /// A chat of the visitor started or ended (or the record changed otherwise): watchers get
    /// the whole record again (`update`). Nothing when the visitor is not on the site.
    pub(crate) async fn visitor_chats_changed(&self, visitor: &str) {
        if visitor.is_empty() {
            return;
        }
        match self.redis.visitor_touch(visitor, now_ms()).await {
            Ok(Some(r)) => self.visitor_change("update", visitor, Some(site_visitor(visitor, &r))),
            Ok(None) => {}
            Err(e) => {
                self.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "visitor record not read");
            }
        }
    }

    /// The visitor's grace period ran out (no connection anywhere): the visit is over.
    /// Idempotent; its chats are ended by the caller.
    pub async fn visitor_left(&self, visitor: &str) -> ChatResult<()> {
        if self.redis.visitor_leave(visitor).await? {
            self.visitor_change("leave", visitor, None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_urls_are_cut_and_cleaned() {
        assert_eq!(clean_title(Some("  a\u{0}b\n "), 200), "a b");
        assert_eq!(
            clean_title(Some(&"é".repeat(300)), 120).chars().count(),
            120
        );
        assert_eq!(clean_title(None, 200), "");
        assert_eq!(cut("https://é.example/abc", 12), "https://é.ex");
        assert_eq!(cut("short", 12), "short");
    }

    #[test]
    fn records_become_site_visitors() {
        let mut r = VisitorRecord::default();
        for (k, v) in [
            ("url", "https://a.example/x"),
            ("started_at", "5"),
            ("last_seen", "9"),
            ("new", "1"),
        ] {
            r.fields.insert(k.into(), v.into());
        }
        r.fields.insert("pages".into(), "3".into());
        r.chats = 1;
        let v = site_visitor("v1", &r);
        assert_eq!(v.started_at, 5);
        assert!(v.new && v.chatting);
        assert_eq!(v.page_count, 3);
    }
}
