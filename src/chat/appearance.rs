//! The widget's appearance: checked when an admin saves it, and served to every widget from a
//! short per-node cache. A node reads the store at most once per [`CACHE_TTL`]; the node that
//! saves a change serves it at once, every other node within the TTL (no Redis involved, so a
//! Redis outage changes nothing here). When the store cannot be read, the last value read is
//! served, else the error.

use super::audit::Actor;
use super::{clean_optional, ChatError, ChatResult, Service};
use crate::protocol::ErrorCode;
use crate::store::Appearance;
use serde::Deserialize;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a node serves the appearance it read before reading it again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Longest texts, in characters.
pub const MAX_GREETING: usize = 300;
pub const MAX_LAUNCHER_TEXT: usize = 40;
pub const MAX_OFFLINE_TEXT: usize = 500;

/// The node's copy of the appearance and when it was read.
#[derive(Default)]
pub(super) struct Cached(Mutex<Option<(Instant, Arc<Appearance>)>>);

/// What an admin sends; absent fields are the built-in look.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppearanceInput {
    #[serde(default)]
    pub color: String,
    #[serde(default)]
    pub greeting: String,
    #[serde(default)]
    pub position: Option<String>,
    #[serde(default)]
    pub launcher_text: String,
    #[serde(default)]
    pub offline_text: String,
}

fn invalid(m: impl Into<String>) -> ChatError {
    ChatError::new(ErrorCode::InvalidField, m)
}

/// `#rrggbb` (any case, stored lower case) or "".
fn color(c: &str) -> ChatResult<String> {
    let c = c.trim();
    if c.is_empty() {
        return Ok(String::new());
    }
    let hex = c.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("color must be #rrggbb (six hex digits)"));
    }
    Ok(c.to_ascii_lowercase())
}

/// A text field: trimmed, at most `max` characters, no control characters (line breaks only
/// where `multiline`). The widget renders it as text, so markup shows as typed.
fn text(v: &str, max: usize, field: &str, multiline: bool) -> ChatResult<String> {
    clean_optional(Some(v.to_string()), max, field, multiline)
        .map(Option::unwrap_or_default)
        // Too long is an invalid field here, not a chat message over its limit.
        .map_err(|e| invalid(e.message))
}

/// Checks an admin's input and turns it into what is stored.
pub fn validate(input: &AppearanceInput) -> ChatResult<Appearance> {
    let position = match input.position.as_deref().map(str::trim) {
        None | Some("") | Some("right") => "right",
        Some("left") => "left",
        Some(_) => return Err(invalid("position must be right or left")),
    };
    Ok(Appearance {
        color: color(&input.color)?,
        greeting: text(&input.greeting, MAX_GREETING, "greeting", true)?,
        position: position.into(),
        launcher_text: text(
            &input.launcher_text,
            MAX_LAUNCHER_TEXT,
            "launcher_text",
            false,
        )?,
        offline_text: text(&input.offline_text, MAX_OFFLINE_TEXT, "offline_text", true)?,
        updated_at: 0,
    })
}

impl Service {
    /// The appearance the widget gets: from this node's cache while it is fresh.
    pub async fn appearance(&self) -> ChatResult<Arc<Appearance>> {
        let stale = {
            let cached = self.appearance.0.lock().unwrap();
            match &*cached {
                Some((at, a)) if at.elapsed() < CACHE_TTL => return Ok(a.clone()),
                other => other.as_ref().map(|(_, a)| a.clone()),
            }
        };
        match self.store.appearance().await {
            Ok(a) => Ok(self.cache_appearance(a)),
            Err(e) => match stale {
                Some(a) => {
                    tracing::warn!(error = %e, "appearance unreadable; serving the last one read");
                    Ok(a)
                }
                None => Err(e.into()),
            },
        }
    }

    /// Saves a new appearance (checked first), serves it from this node at once, and writes
    /// the audit entry.
    pub async fn set_appearance(
        &self,
        actor: &Actor,
        input: &AppearanceInput,
    ) -> ChatResult<Arc<Appearance>> {
        let checked = validate(input)?;
        let saved = self.store.set_appearance(&checked).await?;
        let detail = json!({
            "color": saved.color,
            "position": saved.position,
            "greeting_chars": saved.greeting.chars().count(),
            "launcher_text_chars": saved.launcher_text.chars().count(),
            "offline_text_chars": saved.offline_text.chars().count(),
        });
        let saved = self.cache_appearance(saved);
        self.audit(actor, "appearance.change", "widget", detail)
            .await?;
        Ok(saved)
    }

    fn cache_appearance(&self, a: Appearance) -> Arc<Appearance> {
        let a = Arc::new(a);
        *self.appearance.0.lock().unwrap() = Some((Instant::now(), a.clone()));
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(color: &str, position: Option<&str>) -> AppearanceInput {
        AppearanceInput {
            color: color.into(),
            position: position.map(String::from),
            ..AppearanceInput::default()
        }
    }

    #[test]
    fn colours_and_positions_are_checked() {
        assert_eq!(validate(&input("#1A2b3C", None)).unwrap().color, "#1a2b3c");
        assert_eq!(validate(&input("", Some("left"))).unwrap().position, "left");
        assert_eq!(validate(&input("", None)).unwrap().position, "right");
        for bad in ["red", "#12345", "#1234567", "1a2b3c", "#gggggg", "#fff;x"] {
            let e = validate(&input(bad, None)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField, "{bad}");
        }
        assert!(validate(&input("", Some("top"))).is_err());
    }

    #[test]
    fn texts_are_bounded_and_free_of_control_characters() {
        let long = AppearanceInput {
            launcher_text: "x".repeat(MAX_LAUNCHER_TEXT + 1),
            ..AppearanceInput::default()
        };
        assert_eq!(validate(&long).unwrap_err().code, ErrorCode::InvalidField);
        let ctl = AppearanceInput {
            launcher_text: "a\u{7}b".into(),
            ..AppearanceInput::default()
        };
        assert!(validate(&ctl).is_err());
        let markup = AppearanceInput {
            greeting: "Hi <b>there</b>\nHow can we help?".into(),
            ..AppearanceInput::default()
        };
        // Kept as typed: the widget shows it as text.
        assert_eq!(
            validate(&markup).unwrap().greeting,
            "Hi <b>there</b>\nHow can we help?"
        );
    }
}
