//! What admins do with webhook endpoints: register, change, delete, read the delivery log and
//! redeliver an event. Every change is checked (URL rules, event types), written to SQL, made
//! effective in Redis (the wanted types) and recorded in the audit log.

use super::guard::Guard;
use super::valid_event_type;
use super::worker::RetryMember;
use crate::chat::audit::Actor;
use crate::chat::{now_ms, ChatError, ChatResult, Service};
use crate::protocol::ErrorCode;
use crate::store::{Delivery, EndpointChange, StoreError, WebhookEndpoint};
use serde_json::json;

/// Endpoints a deployment may register (each event is sent to every one that wants it).
pub const MAX_ENDPOINTS: usize = 50;
const MAX_DESCRIPTION_CHARS: usize = 200;
const MAX_URL_BYTES: usize = 2048;
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// An admin's request; absent fields keep their value (or take the default when creating).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    #[serde(default)]
    pub url: Option<String>,
    /// 16-256 characters; generated (and returned once) when creating without one.
    #[serde(default)]
    pub secret: Option<String>,
    /// Replace the secret with a generated one (returned once).
    #[serde(default)]
    pub rotate_secret: bool,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A secret that was just set: shown to the admin this once, never again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecret(pub Option<String>);

fn invalid(m: impl Into<String>) -> ChatError {
    ChatError::new(ErrorCode::InvalidField, m)
}

fn generated_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("whsec_{hex}")
}

fn not_found(e: StoreError) -> ChatError {
    match e {
        StoreError::NotFound => ChatError::new(ErrorCode::NotFound, "no such webhook endpoint"),
        other => other.into(),
    }
}

impl Service {
    /// Checks an admin's input into a change (`creating`: url and events are required).
    async fn endpoint_change(
        &self,
        i: &EndpointInput,
        creating: bool,
    ) -> ChatResult<(EndpointChange, NewSecret)> {
        let mut change = EndpointChange::default();
        match &i.url {
            Some(u) if u.len() > MAX_URL_BYTES => return Err(invalid("url is over 2048 bytes")),
            Some(u) => {
                let url = Guard::new(&self.settings.webhooks)
                    .check_url_resolved(u)
                    .await
                    .map_err(|e| invalid(format!("url: {e}")))?;
                change.url = Some(url.to_string());
            }
            None if creating => return Err(invalid("url is required")),
            None => {}
        }
        match &i.events {
            Some(events) => {
                let mut list: Vec<String> = Vec::new();
                for e in events {
                    if !valid_event_type(e) {
                        return Err(invalid(format!("unknown event type {e:?}")));
                    }
                    if !list.contains(e) {
                        list.push(e.clone());
                    }
                }
                if list.is_empty() {
                    return Err(invalid("events must name at least one event type"));
                }
                change.events = Some(list);
            }
            None if creating => return Err(invalid("events is required")),
            None => {}
        }
        if let Some(d) = &i.description {
            if d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control) {
                return Err(invalid(
                    "description must be at most 200 characters, without control characters",
                ));
            }
            change.description = Some(d.trim().to_string());
        }
        change.enabled = i.enabled;
        let secret = match (&i.secret, i.rotate_secret) {
            (Some(_), true) => return Err(invalid("give a secret or rotate_secret, not both")),
            (Some(s), false) => {
                if !SECRET_BYTES.contains(&s.len()) || s.chars().any(char::is_control) {
                    return Err(invalid("secret must be 16-256 characters"));
                }
                Some(s.clone())
            }
            (None, true) => Some(generated_secret()),
            (None, false) if creating => Some(generated_secret()),
            (None, false) => None,
        };
        change.secret = secret.clone();
        Ok((change, NewSecret(secret)))
    }

    pub async fn webhook_endpoints(&self) -> ChatResult<Vec<WebhookEndpoint>> {
        Ok(self.store.endpoints().await?)
    }

    pub async fn webhook_endpoint(&self, id: i64) -> ChatResult<WebhookEndpoint> {
        self.store
            .endpoint(id)
            .await?
            .ok_or_else(|| not_found(StoreError::NotFound))
    }

    pub async fn create_webhook(
        &self,
        actor: &Actor,
        i: &EndpointInput,
    ) -> ChatResult<(WebhookEndpoint, NewSecret)> {
        let (change, secret) = self.endpoint_change(i, true).await?;
        if self.store.endpoints().await?.len() >= MAX_ENDPOINTS {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                format!("at most {MAX_ENDPOINTS} webhook endpoints; delete one first"),
            ));
        }
        let e = self
            .store
            .create_endpoint(
                change.url.as_deref().unwrap_or_default(),
                change.secret.as_deref().unwrap_or_default(),
                change.events.as_deref().unwrap_or_default(),
                change.description.as_deref().unwrap_or_default(),
                change.enabled.unwrap_or(true),
            )
            .await?;
        self.sync_hook_types().await?;
        self.audit(
            actor,
            "webhook.create",
            &format!("webhook:{}", e.id),
            json!({ "url": e.url, "events": e.events, "enabled": e.enabled }),
        )
        .await?;
        Ok((e, secret))
    }

    pub async fn update_webhook(
        &self,
        actor: &Actor,
        id: i64,
        i: &EndpointInput,
    ) -> ChatResult<(WebhookEndpoint, NewSecret)> {
        let (change, secret) = self.endpoint_change(i, false).await?;
        let e = self
            .store
            .update_endpoint(id, &change)
            .await
            .map_err(not_found)?;
        self.sync_hook_types().await?;
        let mut changed: Vec<&str> = Vec::new();
        for (name, set) in [
            ("url", change.url.is_some()),
            ("secret", change.secret.is_some()),
            ("events", change.events.is_some()),
            ("description", change.description.is_some()),
            ("enabled", change.enabled.is_some()),
        ] {
            if set {
                changed.push(name);
            }
        }
        self.audit(
            actor,
            "webhook.update",
            &format!("webhook:{id}"),
            json!({ "changed": changed, "enabled": e.enabled }),
        )
        .await?;
        Ok((e, secret))
    }

    pub async fn delete_webhook(&self, actor: &Actor, id: i64) -> ChatResult<()> {
        if !self.store.delete_endpoint(id).await? {
            return Err(not_found(StoreError::NotFound));
        }
        self.sync_hook_types().await?;
        self.audit(actor, "webhook.delete", &format!("webhook:{id}"), json!({}))
            .await
    }

    pub async fn webhook_deliveries(
        &self,
        id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> ChatResult<Vec<Delivery>> {
        self.webhook_endpoint(id).await?;
        Ok(self.store.deliveries(id, before, limit).await?)
    }

    /// Sends a stored event to the endpoint again, at once, with the same event id; its
    /// retries follow the usual schedule counted from now.
    pub async fn redeliver_webhook(
        &self,
        actor: &Actor,
        id: i64,
        event_id: &str,
    ) -> ChatResult<()> {
        let e = self.webhook_endpoint(id).await?;
        if !e.enabled {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                "the endpoint is disabled; enable it first",
            ));
        }
        if self.store.event(event_id).await?.is_none() {
            return Err(ChatError::new(
                ErrorCode::NotFound,
                "no such event (never sent, or past webhook retention)",
            ));
        }
        let (attempts, _) = self.store.attempts(event_id, id).await?;
        let now = now_ms();
        let member = RetryMember {
            endpoint: id,
            attempt: attempts + 1,
            since: now,
            event: event_id.to_string(),
        };
        self.redis
            .schedule_hook_retry(&member.encode(), now)
            .await?;
        self.audit(
            actor,
            "webhook.redeliver",
            &format!("webhook:{id}"),
            json!({ "event_id": event_id }),
        )
        .await
    }
}
