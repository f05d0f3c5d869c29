//! The widget's appearance as admins set it: one row, read by every node (through the chat
//! service's short cache) and served to the widget.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{now_ms, Call, Store};

/// What the widget shows; "" in a text field means the widget's built-in text or colour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appearance {
    /// `#rrggbb`, or "" for the default blue.
    pub color: String,
    /// Above the pre-chat form.
    pub greeting: String,
    /// `right` or `left`: the bottom corner of the launcher and the pane.
    pub position: String,
    /// The launcher's label while a chat can be started.
    pub launcher_text: String,
    /// Shown while nobody is there, for queues without an offline text of their own.
    pub offline_text: String,
    /// When an admin last saved it (Unix ms; 0 = never).
    pub updated_at: i64,
}

impl Appearance {
    /// The widget's built-in look.
    pub fn builtin() -> Appearance {
        Appearance {
            position: "right".into(),
            ..Appearance::default()
        }
    }
}

impl Store {
    /// The stored appearance, or the built-in one when no admin has saved any.
    pub fn appearance<'a>(&'a self) -> Call<'a, Appearance> {
        self.bounded(async move {
            let row = sqlx::query(
                "SELECT color, greeting, position, launcher_text, offline_text, updated_at \
                 FROM widget_appearance WHERE id = 1",
            )
            .fetch_optional(&self.pool)
            .await?;
            let Some(r) = row else {
                return Ok(Appearance::builtin());
            };
            Ok(Appearance {
                color: r.try_get("color")?,
                greeting: r.try_get("greeting")?,
                position: r.try_get("position")?,
                launcher_text: r.try_get("launcher_text")?,
                offline_text: r.try_get("offline_text")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
    }

    /// Replaces the appearance (already validated); returns it with its new `updated_at`.
    pub fn set_appearance<'a>(&'a self, a: &'a Appearance) -> Call<'a, Appearance> {
        self.bounded(async move {
            let at = now_ms();
            sqlx::query(
                "INSERT INTO widget_appearance \
                 (id, color, greeting, position, launcher_text, offline_text, updated_at) \
                 VALUES (1, $1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                 color = $1, greeting = $2, position = $3, launcher_text = $4, \
                 offline_text = $5, updated_at = $6",
            )
            .bind(a.color.as_str())
            .bind(a.greeting.as_str())
            .bind(a.position.as_str())
            .bind(a.launcher_text.as_str())
            .bind(a.offline_text.as_str())
            .bind(at)
            .execute(&self.pool)
            .await?;
            Ok(Appearance {
                updated_at: at,
                ..a.clone()
            })
        })
    }
}
