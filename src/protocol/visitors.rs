//! Wire types of the site-visitors list: a visitor's record, its compact row, a change.

use serde::{Deserialize, Serialize};

/// One visitor now on the site, as agents see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SiteVisitor {
    pub visitor_id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Current page (cut to `abuse.visitor_url_chars`).
    pub url: String,
    /// Its title (cut to `abuse.visitor_title_chars`).
    #[serde(default)]
    pub title: String,
    /// Page views of this visit so far (the history itself: `visitor_history`).
    #[serde(default)]
    pub page_count: u64,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub ip: String,
    /// When this visit started (ms).
    pub started_at: i64,
    /// Last page view or heartbeat (ms).
    pub last_seen: i64,
    /// A chat (waiting, offered, invited or running) is live for this visitor.
    #[serde(default)]
    pub chatting: bool,
    /// No contact with this (verified) e-mail or visitor id in the store yet.
    #[serde(default)]
    pub new: bool,
    /// Whether the site vouched for `email` (signed identify); false for one typed in the
    /// pre-chat form.
    #[serde(default)]
    pub email_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PageSeen {
    pub url: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub referrer: String,
    pub at: i64,
}

/// What a watcher of the site-visitors list sorts, filters and counts rows by: the row of a
/// visitor whose whole record it does not have in view (`rows: "in_view"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CompactVisitor {
    pub visitor_id: String,
    pub started_at: i64,
    pub last_seen: i64,
    #[serde(default)]
    pub new: bool,
}

impl From<&SiteVisitor> for CompactVisitor {
    fn from(v: &SiteVisitor) -> CompactVisitor {
        CompactVisitor {
            visitor_id: v.visitor_id.clone(),
            started_at: v.started_at,
            last_seen: v.last_seen,
            new: v.new,
        }
    }
}

/// One row of the site-visitors list: the whole record, or its compact form. Told apart by
/// their fields (a whole record has `url`), so both encode as plain maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VisitorRow {
    Full(SiteVisitor),
    Compact(CompactVisitor),
}

impl VisitorRow {
    pub fn visitor_id(&self) -> &str {
        match self {
            VisitorRow::Full(v) => &v.visitor_id,
            VisitorRow::Compact(v) => &v.visitor_id,
        }
    }
    pub fn last_seen(&self) -> i64 {
        match self {
            VisitorRow::Full(v) => v.last_seen,
            VisitorRow::Compact(v) => v.last_seen,
        }
    }
    /// The whole record, when this row carries it.
    pub fn full(&self) -> Option<&SiteVisitor> {
        match self {
            VisitorRow::Full(v) => Some(v),
            VisitorRow::Compact(_) => None,
        }
    }
}

/// A change to the site-visitors list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitorChange {
    /// `arrive`, `page`, `update` or `leave`.
    pub kind: String,
    pub visitor_id: String,
    /// The visitor's current row (absent for `leave`): the whole record, except the compact
    /// `arrive` an `in_view` watcher gets for a visitor out of its view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<VisitorRow>,
}
