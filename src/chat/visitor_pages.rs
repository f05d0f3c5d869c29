//! The site-visitors list read on request: pages of the list (`watch_visitors`,
//! `list_visitors`), the whole records of the rows a console shows (`view_visitors`), and one
//! visitor's page history (`visitor_history`). The live changes: `visitor_list`.

use super::hub::{ConnId, Follower};
use super::visitor_list::Rows;
use super::visitors::site_visitor;
use super::{ChatError, ChatResult, Party, Service};
use crate::protocol::{
    CompactVisitor, ErrorCode, PageSeen, ServerFrame, VisitorChange, VisitorRow,
};
use std::collections::HashSet;

/// Records read at once for a page of the list (pipelined on the pool).
const PAGE_CONCURRENCY: usize = 256;

/// A list cursor: the visit start and id of the last visitor of a page.
fn parse_cursor(c: &str) -> ChatResult<(i64, &str)> {
    c.split_once(':')
        .and_then(|(s, id)| Some((s.parse().ok()?, id)))
        .filter(|(_, id)| !id.is_empty() && id.len() <= 64)
        .ok_or_else(|| ChatError::new(ErrorCode::InvalidField, "after is not a list cursor"))
}

fn only_agents(party: &Party) -> ChatResult<()> {
    match party {
        Party::Agent { .. } => Ok(()),
        Party::Visitor { .. } => Err(ChatError::new(
            ErrorCode::Forbidden,
            "only agents watch the site visitors",
        )),
    }
}

fn valid_visitor_id(id: &str) -> ChatResult<()> {
    if id.is_empty() || id.len() > 64 {
        return Err(ChatError::new(
            ErrorCode::InvalidField,
            "visitor_id must be 1-64 characters",
        ));
    }
    Ok(())
}

impl Service {
    /// Starts (or restarts) the list for this connection: the first page, then changes.
    pub async fn watch_visitors(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        limit: Option<u32>,
        rows: Option<&str>,
    ) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        let rows = Rows::parse(rows)?;
        // Follow first: a change made while the page is read arrives as a change after it.
        let channel = self.redis.keys.visitors_channel();
        self.hub.follow(&channel, conn, f.clone()).await?;
        self.visitor_list.watch(conn, f, rows);
        match self.visitors_page(None, limit, rows).await {
            Ok(frame) => Ok(frame),
            Err(e) => {
                self.unwatch_visitors(conn).await;
                Err(e)
            }
        }
    }

    /// The page of the list after `after` (a `next` cursor of an earlier page), with the rows
    /// this connection watches with.
    pub async fn list_visitors(
        &self,
        party: &Party,
        conn: ConnId,
        after: &str,
        limit: Option<u32>,
    ) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        let cursor = parse_cursor(after)?;
        let rows = self.visitor_list.rows_of(conn);
        self.visitors_page(Some((cursor, after)), limit, rows).await
    }

    async fn visitors_page(
        &self,
        after: Option<((i64, &str), &str)>,
        limit: Option<u32>,
        rows: Rows,
    ) -> ChatResult<ServerFrame> {
        let max = self.settings.abuse.visitors_page_size;
        let limit = limit.unwrap_or(max).clamp(1, max) as usize;
        let (ids, total) = tokio::join!(
            self.redis.visitors_after(after.map(|(c, _)| c), limit),
            self.redis.visitor_count(),
        );
        let ids = ids?;
        let next = match ids.last() {
            Some((id, start)) if ids.len() == limit => format!("{start}:{id}"),
            _ => String::new(),
        };
        let mut visitors: Vec<VisitorRow> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PAGE_CONCURRENCY) {
            let records = futures_util::future::join_all(
                chunk.iter().map(|(id, _)| self.redis.visitor_record(id)),
            )
            .await;
            for ((id, _), r) in chunk.iter().zip(records) {
                // None: left between the two reads.
                if let Some(r) = r? {
                    let v = site_visitor(id, &r);
                    visitors.push(match rows {
                        Rows::Full => VisitorRow::Full(v),
                        Rows::InView => VisitorRow::Compact(CompactVisitor::from(&v)),
                    });
                }
            }
        }
        Ok(ServerFrame::VisitorsSnapshot {
            visitors,
            after: after.map(|(_, raw)| raw.to_string()).unwrap_or_default(),
            next,
            total: total?,
            view_max: self.settings.abuse.visitors_in_view,
        })
    }

    /// Makes `ids` the view set of this `in_view` watcher and answers with their whole records
    /// (`update`), or `leave` for those not on the site. The set is installed before the
    /// records are read, so a change made meanwhile comes with the next delivery too.
    pub async fn view_visitors(
        &self,
        party: &Party,
        conn: ConnId,
        ids: Vec<String>,
    ) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        let max = self.settings.abuse.visitors_in_view as usize;
        if ids.len() > max {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                format!(
                    "ids names {} visitors; at most {max} (abuse.visitors_in_view)",
                    ids.len()
                ),
            ));
        }
        ids.iter().try_for_each(|id| valid_visitor_id(id))?;
        let mut seen = HashSet::with_capacity(ids.len());
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        self.visitor_list.set_view(conn, seen)?;
        let records =
            futures_util::future::join_all(ids.iter().map(|id| self.redis.visitor_record(id)))
                .await;
        let mut changes = Vec::with_capacity(ids.len());
        for (id, r) in ids.into_iter().zip(records) {
            changes.push(match r? {
                Some(r) => VisitorChange {
                    kind: "update".into(),
                    visitor: Some(VisitorRow::Full(site_visitor(&id, &r))),
                    visitor_id: id,
                },
                None => VisitorChange {
                    kind: "leave".into(),
                    visitor_id: id,
                    visitor: None,
                },
            });
        }
        Ok(ServerFrame::VisitorsChanged { changes })
    }

    /// One visitor's page history, oldest first (at most `abuse.visitor_pages_kept`).
    pub async fn visitor_history(&self, party: &Party, visitor: &str) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        valid_visitor_id(visitor)?;
        let (pages, record) = tokio::join!(
            self.redis.visitor_pages(visitor),
            self.redis.visitor_record(visitor),
        );
        if record?.is_none() {
            return Err(ChatError::new(
                ErrorCode::NotFound,
                "no such visitor on the site",
            ));
        }
        Ok(ServerFrame::VisitorHistory {
            visitor_id: visitor.to_string(),
            pages: pages?
                .iter()
                .filter_map(|p| serde_json::from_str::<PageSeen>(p).ok())
                .collect(),
        })
    }

    /// Stops the site-visitors list for this connection (also on every disconnect).
    pub async fn unwatch_visitors(&self, conn: ConnId) {
        self.visitor_list.unwatch(conn);
        let channel = self.redis.keys.visitors_channel();
        if self.hub.is_following(&channel, conn) {
            self.hub.unfollow(&channel, conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse() {
        assert_eq!(parse_cursor("17:abc").unwrap(), (17, "abc"));
        for bad in ["", "x:abc", "17:", "17"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
