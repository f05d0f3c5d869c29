//! The frames of the hot path, encoded and decoded without allocating: a `send` written from
//! borrowed strings into the connection's frame buffer, and `entry` / `ack` frames read as
//! views borrowing the read buffer. Field for field the server's protocol types (version 1,
//! JSON or MessagePack), so the server sees exactly what the shared `switchboard::protocol`
//! encoder would write; every other frame goes through that module's full decoder.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use switchboard::protocol::Encoding;

#[derive(Serialize)]
struct SendRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    chat_id: &'a str,
    client_msg_id: &'a str,
    text: &'a str,
}

/// Appends a `send` frame to `buf`.
pub fn put_send(buf: &mut Vec<u8>, enc: Encoding, chat_id: &str, cmid: &str, text: &str) {
    let f = SendRef {
        kind: "send",
        chat_id,
        client_msg_id: cmid,
        text,
    };
    match enc {
        Encoding::Json => serde_json::to_writer(buf, &f).expect("a send frame serialises"),
        Encoding::MsgPack => {
            rmp_serde::encode::write_named(buf, &f).expect("a send frame serialises")
        }
    }
}

/// `42["msg","TEXT"]`: a Socket.IO event carrying a load-test text (ASCII digits, spaces and
/// padding: nothing JSON would escape).
pub fn put_socketio_msg(buf: &mut Vec<u8>, text: &str) {
    debug_assert!(!text.contains(['"', '\\']));
    buf.extend_from_slice(b"42[\"msg\",\"");
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"\"]");
}

/// The text of a Socket.IO `msg` event, when it is one and needs no unescaping.
pub fn socketio_msg(frame: &[u8]) -> Option<&str> {
    let t = frame.strip_prefix(b"42[\"msg\",\"")?.strip_suffix(b"\"]")?;
    if t.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(t).ok()
}

/// A server frame seen through the fields of `entry` and `ack`; others are told by `kind`.
#[derive(Deserialize)]
pub struct Hot<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub chat_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub client_msg_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub entry: Option<HotEntry<'a>>,
}

#[derive(Deserialize)]
pub struct HotEntry<'a> {
    #[serde(borrow)]
    pub seq: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    #[serde(default, borrow)]
    pub event: Cow<'a, str>,
}

pub fn hot(payload: &[u8], enc: Encoding) -> Option<Hot<'_>> {
    match enc {
        Encoding::Json => serde_json::from_slice(payload).ok(),
        Encoding::MsgPack => rmp_serde::from_slice(payload).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard::protocol::{
        decode_client, encode_server, ClientFrame, Entry, EntryKind, ServerFrame,
    };

    #[test]
    fn send_is_what_the_server_decodes() {
        for enc in [Encoding::Json, Encoding::MsgPack] {
            let mut b = Vec::new();
            put_send(&mut b, enc, "c1", "v7", "lt 7 1 2 xx");
            assert_eq!(
                decode_client(&b, enc, 1 << 16).unwrap(),
                ClientFrame::Send {
                    chat_id: "c1".into(),
                    client_msg_id: "v7".into(),
                    text: "lt 7 1 2 xx".into()
                }
            );
        }
    }

    #[test]
    fn entry_and_ack_read_as_views() {
        let entry = ServerFrame::Entry {
            chat_id: "c1".into(),
            entry: Entry {
                seq: "17-0".into(),
                kind: EntryKind::Message,
                author: "agent".into(),
                author_id: "7".into(),
                name: "Ann".into(),
                text: "lt 1 2 3".into(),
                at: 5,
                client_msg_id: "a1".into(),
                event: String::new(),
                data: Some(serde_json::json!({"url": "https://x.example"})),
            },
        };
        let ack = ServerFrame::Ack {
            chat_id: "c1".into(),
            client_msg_id: "v3".into(),
            seq: "18-0".into(),
        };
        for enc in [Encoding::Json, Encoding::MsgPack] {
            let b = encode_server(&entry, enc);
            let h = hot(&b, enc).unwrap();
            let e = h.entry.unwrap();
            assert_eq!((&*h.kind, &*h.chat_id), ("entry", "c1"));
            assert_eq!(
                (&*e.seq, &*e.kind, &*e.author, &*e.text),
                ("17-0", "message", "agent", "lt 1 2 3")
            );
            let b = encode_server(&ack, enc);
            let h = hot(&b, enc).unwrap();
            assert_eq!((&*h.kind, &*h.client_msg_id), ("ack", "v3"));
            assert!(matches!(h.chat_id, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn socketio_events_both_ways() {
        let mut b = Vec::new();
        put_socketio_msg(&mut b, "lt 1 2 3 xx");
        assert_eq!(b, br#"42["msg","lt 1 2 3 xx"]"#);
        assert_eq!(socketio_msg(&b), Some("lt 1 2 3 xx"));
        assert_eq!(socketio_msg(br#"42["msg","a\"b"]"#), None);
        assert_eq!(socketio_msg(b"2"), None);
    }
}
