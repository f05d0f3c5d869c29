//! Post-chat ratings: one per chat, written when the visitor gives it (before or after the
//! chat's transcript is flushed), found by chat id.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::Store;
use crate::store::Call;
use serde::Serialize;

/// A visitor's rating of one chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rating {
    pub chat_id: String,
    pub queue: String,
    pub agent_id: Option<i64>,
    /// `good` or `bad`.
    pub rating: String,
    pub comment: Option<String>,
    pub rated_at: i64,
}

fn from_row(r: &AnyRow) -> Result<Rating, sqlx::Error> {
    Ok(Rating {
        chat_id: r.try_get("chat_id")?,
        queue: r.try_get("queue")?,
        agent_id: r.try_get("agent_id")?,
        rating: r.try_get("rating")?,
        comment: r.try_get("comment")?,
        rated_at: r.try_get("rated_at")?,
    })
}

impl Store {
    /// Stores a rating unless the chat has one: true when this call stored it. The chat id is
    /// the key, so two nodes racing with the same visitor's rating store exactly one.
    pub fn insert_rating<'a>(&'a self, r: &'a Rating) -> Call<'a, bool> {
        self.bounded(async move {
            let done = sqlx::query(
                "INSERT INTO chat_ratings (chat_id, queue, agent_id, rating, comment, rated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chat_id) DO NOTHING",
            )
            .bind(&r.chat_id)
            .bind(&r.queue)
            .bind(r.agent_id)
            .bind(&r.rating)
            .bind(r.comment.as_deref())
            .bind(r.rated_at)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The ratings of these chats (those that have one).
    pub fn ratings_of<'a>(&'a self, chats: &'a [String]) -> Call<'a, Vec<Rating>> {
        self.bounded(async move {
            let mut out = Vec::new();
            // A handful of chats per interaction: one indexed lookup each.
            for chat in chats {
                let row = sqlx::query(
                    "SELECT chat_id, queue, agent_id, rating, comment, rated_at \
                     FROM chat_ratings WHERE chat_id = $1",
                )
                .bind(chat)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = row {
                    out.push(from_row(&row)?);
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chat_is_rated_once() {
        let store = Store::connect("sqlite::memory:", 1).await.unwrap();
        let mut r = Rating {
            chat_id: "c1".into(),
            queue: "general".into(),
            agent_id: Some(3),
            rating: "good".into(),
            comment: Some("quick".into()),
            rated_at: 1,
        };
        assert!(store.insert_rating(&r).await.unwrap());
        r.rating = "bad".into();
        assert!(!store.insert_rating(&r).await.unwrap());
        let got = store.ratings_of(&["c1".into(), "c2".into()]).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rating, "good");
        assert_eq!(got[0].comment.as_deref(), Some("quick"));
    }
}
