//! Key and channel names. Routing keys share the `{r}` tag, a chat's transcript keys share
//! `{c:ID}`, the flush stream is `{f}`; see `docs/design-redis.md`.

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The prefix followed by `parts`, in a string allocated once at its length (`format!`
    /// starting with an argument grows its string two or three times).
    fn key(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut s = String::with_capacity(len);
        s.push_str(&self.prefix);
        for p in parts {
            s.push_str(p);
        }
        s
    }
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }
    /// The routing prefix `P{r}:` that scripts extend.
    pub fn routing(&self) -> String {
        self.key(&["{r}:"])
    }
    pub fn agent(&self, a: &str) -> String {
        self.key(&["{r}:agent:", a])
    }
    /// The cluster's agent sums kept by the routing scripts (`common.lua`): `load`, `free`.
    pub fn agent_totals(&self) -> String {
        self.key(&["{r}:agent_totals"])
    }
    pub fn avail(&self, q: &str) -> String {
        self.key(&["{r}:avail:", q])
    }
    pub fn queue(&self, q: &str) -> String {
        self.key(&["{r}:q:", q])
    }
    pub fn queues(&self) -> String {
        self.key(&["{r}:queues"])
    }
    /// The old name of a queue renamed lately (value: the new name): refused while it lasts.
    pub fn queue_gone(&self, q: &str) -> String {
        self.key(&["{r}:gone:", q])
    }
    pub fn chat(&self, c: &str) -> String {
        self.key(&["{r}:chat:", c])
    }
    pub fn agent_chats(&self, a: &str) -> String {
        self.key(&["{r}:agentchats:", a])
    }
    pub fn visitor_chats(&self, v: &str) -> String {
        self.key(&["{r}:visitorchats:", v])
    }
    pub fn timers(&self) -> String {
        self.key(&["{r}:timers"])
    }
    /// Redis's epoch: a random value that changes only when Redis loses its data.
    pub fn epoch(&self) -> String {
        self.key(&["{r}:epoch"])
    }
    /// Channel: a queue changed (payload: queue name).
    pub fn queue_channel(&self) -> String {
        self.key(&["{r}:qch"])
    }
    /// Whether each queue has an available agent with free capacity (field = queue, "1"/"0"),
    /// kept by the routing scripts (`staffed_check` in `common.lua`).
    pub fn staffed(&self) -> String {
        self.key(&["{r}:staffed"])
    }
    /// Channel: a queue's staffed state changed ("QUEUE:1" / "QUEUE:0"), or its settings
    /// ("QUEUE:cfg").
    pub fn staffed_channel(&self) -> String {
        self.key(&["{r}:sch"])
    }
    /// A queue's recent request-to-accept times in ms, newest first (capped list).
    pub fn waits(&self, q: &str) -> String {
        self.key(&["{r}:waits:", q])
    }
    /// A queue's accepts of the last hour, scored by time, members `CHAT:WAIT_MS` (monitor).
    pub fn accepted(&self, q: &str) -> String {
        self.key(&["{r}:accepted:", q])
    }
    /// A queue's missed offers of the last hour, scored by time (monitor).
    pub fn missed(&self, q: &str) -> String {
        self.key(&["{r}:missed:", q])
    }
    /// Fixed-window counters of offline messages per visitor and per IP (one `{ol}` slot).
    pub fn offline_limit(&self, kind: &str, who: &str) -> String {
        self.key(&["{ol}:", kind, ":", who])
    }
    /// The offline-message notification jobs (a stream read by a consumer group of all nodes).
    pub fn mail_jobs(&self) -> String {
        self.key(&["{m}:jobs"])
    }
    /// A visitor on the site: record of the current visit.
    pub fn visitor(&self, v: &str) -> String {
        self.key(&["{r}:visitor:", v])
    }
    /// A visitor's page history (JSON pages, oldest first, bounded).
    pub fn visitor_pages(&self, v: &str) -> String {
        self.key(&["{r}:vpages:", v])
    }
    /// Visitors now on the site, scored by the start of their visit (the list's order).
    pub fn visitors(&self) -> String {
        self.key(&["{r}:visitors"])
    }
    /// Channel: batches of site-visitor changes (a `visitors_changed` frame). Named as a user
    /// channel so the listener delivers it to its local followers (the watching agents).
    pub fn visitors_channel(&self) -> String {
        self.user_channel("site-visitors")
    }
    /// A party's (`v:ID` / `a:ID`) connections per node instance (presence).
    pub fn here(&self, party: &str) -> String {
        self.key(&["{r}:here:", party])
    }
    /// Node instances by their last complete presence beat.
    pub fn nodes(&self) -> String {
        self.key(&["{r}:nodes"])
    }
    pub fn log(&self, c: &str) -> String {
        self.key(&["{c:", c, "}:log"])
    }
    pub fn meta(&self, c: &str) -> String {
        self.key(&["{c:", c, "}:meta"])
    }
    pub fn cmid(&self, c: &str) -> String {
        self.key(&["{c:", c, "}:cmid"])
    }
    /// Channel: a chat's new transcript entries.
    pub fn chat_channel(&self, c: &str) -> String {
        self.key(&["{c:", c, "}"])
    }
    /// The length of the prefix every key starts with.
    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }
    /// The four keys one appended entry touches (`log`, `meta`, `cmid`, `chat_channel`),
    /// written into `buf` and split off it: one buffer for all four instead of a string each.
    pub fn chat_append_keys(&self, c: &str, buf: &mut BytesMut) -> [Bytes; 4] {
        let mut key = |suffix: &str| {
            buf.extend_from_slice(self.prefix.as_bytes());
            buf.extend_from_slice(b"{c:");
            buf.extend_from_slice(c.as_bytes());
            buf.extend_from_slice(b"}");
            buf.extend_from_slice(suffix.as_bytes());
            buf.split().freeze()
        };
        [key(":log"), key(":meta"), key(":cmid"), key("")]
    }
    /// Channel: events for one agent or visitor (`a:ID` / `v:ID`).
    pub fn user_channel(&self, who: &str) -> String {
        self.key(&["{u:", who, "}"])
    }
    /// An agent's session version (see `redis::sessions`); shares the tag of the agent's
    /// channel so one script raises it and publishes.
    pub fn agent_session(&self, a: &str) -> String {
        self.key(&["{u:a:", a, "}:session"])
    }
    /// Webhook event types some enabled endpoint wants (type -> number of endpoints).
    pub fn hook_types(&self) -> String {
        self.key(&["{r}:hooks:types"])
    }
    /// The webhook event stream (consumer group `hooks`), on `{r}` so that routing scripts
    /// append their events in the same step as the change.
    pub fn hook_events(&self) -> String {
        self.key(&["{r}:hooks:events"])
    }
    /// Webhook deliveries waiting for a retry, scored by due time (leased like timers).
    pub fn hook_retries(&self) -> String {
        self.key(&["{r}:hooks:retry"])
    }
    /// A cluster-wide lease (one holder at a time), e.g. `retention`.
    pub fn lease(&self, name: &str) -> String {
        self.key(&["{l}:", name])
    }
    pub fn flush_jobs(&self) -> String {
        self.key(&["{f}:jobs"])
    }
    /// Failed logins of one client IP (`ratelimit.rs`); login keys share the `{login}` tag.
    pub fn login_ip(&self, ip: &str) -> String {
        self.key(&["{login}:ip:", ip])
    }
    /// Failed logins of one username, by a hash of the lower-cased name.
    pub fn login_user(&self, hash: &str) -> String {
        self.key(&["{login}:user:", hash])
    }
    /// What a visitor may still do with an ended chat (rate it, have its transcript
    /// e-mailed) and until when: a JSON ticket that expires (`after_chat.rs`).
    pub fn after_chat(&self, c: &str) -> String {
        self.key(&["{a:", c, "}"])
    }
    /// One limit's rate for one subject (`limits.rs`): its own hash tag.
    pub fn rate(&self, name: &str, subject: &str) -> String {
        self.key(&["{l:", name, ":", subject, "}"])
    }
    /// Open sockets of one subject (`v:ID`, `ip:IP`) per node (`limits.rs`): its own hash tag.
    pub fn sockets(&self, subject: &str) -> String {
        self.key(&["{s:", subject, "}"])
    }
    /// The chat id of a chat channel name, if it is one.
    pub fn chat_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("{c:")?
            .strip_suffix('}')
    }
    /// The user (`a:ID` / `v:ID`) of a user channel name, if it is one.
    pub fn user_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("{u:")?
            .strip_suffix('}')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        let k = Keys::new("t1");
        assert_eq!(k.chat_of_channel(&k.chat_channel("abc")), Some("abc"));
        assert_eq!(k.user_of_channel(&k.user_channel("a:7")), Some("a:7"));
        assert_eq!(k.chat_of_channel(&k.user_channel("a:7")), None);
        assert_eq!(
            Keys::new("other").chat_of_channel(&k.chat_channel("abc")),
            None
        );
    }

    #[test]
    fn append_keys_are_the_chat_keys() {
        let k = Keys::new("t1");
        let mut buf = BytesMut::new();
        let keys = k.chat_append_keys("abc", &mut buf);
        let want = [
            k.log("abc"),
            k.meta("abc"),
            k.cmid("abc"),
            k.chat_channel("abc"),
        ];
        for (got, want) in keys.iter().zip(want) {
            assert_eq!(got.as_ref(), want.as_bytes());
        }
    }
}
