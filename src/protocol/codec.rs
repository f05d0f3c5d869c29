//! Decoding client frames and encoding server frames, JSON or MessagePack.
//! The size limit is checked before any parsing; encoding happens once per frame and the
//! resulting bytes are shared by every recipient.

use super::{ClientFrame, ErrorCode, ServerFrame};
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    MsgPack,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("frame of {size} bytes is over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeError::Malformed(_) => ErrorCode::BadFrame,
        }
    }
}

pub fn decode_client(
    bytes: &[u8],
    encoding: Encoding,
    limit: usize,
) -> Result<ClientFrame, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    match encoding {
        Encoding::Json => {
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        Encoding::MsgPack => {
            rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
    }
}

/// Encodes a frame; JSON yields UTF-8 text, MessagePack yields a binary frame body.
pub fn encode_server(frame: &ServerFrame, encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::Json => {
            Bytes::from(serde_json::to_vec(frame).expect("server frames always serialise"))
        }
        Encoding::MsgPack => {
            // Sized for a typical chat entry, so encoding one does not regrow the buffer.
            let mut buf = Vec::with_capacity(512);
            rmp_serde::encode::write_named(&mut buf, frame)
                .expect("server frames always serialise");
            Bytes::from(buf)
        }
    }
}

/// Encodes a client frame (used by tests and the load tester).
pub fn encode_client(frame: &ClientFrame, encoding: Encoding) -> Bytes {
    match encoding {
        Encoding::Json => {
            Bytes::from(serde_json::to_vec(frame).expect("client frames always serialise"))
        }
        Encoding::MsgPack => {
            Bytes::from(rmp_serde::to_vec_named(frame).expect("client frames always serialise"))
        }
    }
}

/// Decodes a server frame (used by tests and the load tester).
pub fn decode_server(bytes: &[u8], encoding: Encoding) -> Result<ServerFrame, DecodeError> {
    match encoding {
        Encoding::Json => {
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
        Encoding::MsgPack => {
            rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;

    #[test]
    fn json_and_msgpack_round_trip_the_same_frames() {
        let frames = vec![
            ClientFrame::Send {
                chat_id: "c1".into(),
                client_msg_id: "m1".into(),
                text: "hi".into(),
            },
            ClientFrame::RequestChat {
                name: Some("Ann".into()),
                email: None,
                question: None,
                queue: None,
            },
            ClientFrame::Decide {
                chat_id: "c".into(),
                decision: Decision::Add,
                interaction_id: Some(7),
            },
            ClientFrame::SetStatus {
                status: AgentStatus::Away,
            },
        ];
        for f in frames {
            for enc in [Encoding::Json, Encoding::MsgPack] {
                let b = encode_client(&f, enc);
                assert_eq!(decode_client(&b, enc, 1 << 16).unwrap(), f);
            }
        }
    }

    #[test]
    fn visitor_rows_round_trip_whole_or_compact_in_both_encodings() {
        let full = SiteVisitor {
            visitor_id: "v1".into(),
            url: "https://shop.example/".into(),
            started_at: 1,
            last_seen: 2,
            new: true,
            ..Default::default()
        };
        let compact = VisitorRow::Compact(CompactVisitor::from(&full));
        let frames = [
            ServerFrame::VisitorsSnapshot {
                visitors: vec![VisitorRow::Full(full.clone()), compact.clone()],
                after: String::new(),
                next: "2:v1".into(),
                total: 2,
                view_max: 200,
            },
            ServerFrame::VisitorsChanged {
                changes: vec![VisitorChange {
                    kind: "arrive".into(),
                    visitor_id: "v1".into(),
                    visitor: Some(compact),
                }],
            },
        ];
        for f in frames {
            for enc in [Encoding::Json, Encoding::MsgPack] {
                assert_eq!(decode_server(&encode_server(&f, enc), enc).unwrap(), f);
            }
        }
        // A compact row leaves the other fields out rather than sending them empty.
        let f = ServerFrame::VisitorsChanged {
            changes: vec![VisitorChange {
                kind: "arrive".into(),
                visitor_id: "v1".into(),
                visitor: Some(VisitorRow::Compact(CompactVisitor::from(&full))),
            }],
        };
        let s = String::from_utf8(encode_server(&f, Encoding::Json).to_vec()).unwrap();
        assert!(
            s.contains(r#""visitor":{"visitor_id":"v1","started_at":1,"last_seen":2,"new":true}"#),
            "{s}"
        );
        let c = ClientFrame::ViewVisitors {
            ids: vec!["v1".into()],
        };
        for enc in [Encoding::Json, Encoding::MsgPack] {
            assert_eq!(
                decode_client(&encode_client(&c, enc), enc, 1024).unwrap(),
                c
            );
        }
    }

    #[test]
    fn oversize_is_refused_before_parsing() {
        let err = decode_client(&[b'{'; 100], Encoding::Json, 10).unwrap_err();
        assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    }

    #[test]
    fn unknown_type_and_unknown_field_are_bad_frames() {
        for bad in [
            &br#"{"type":"nope"}"#[..],
            br#"{"type":"end","chat_id":"x","extra":1}"#,
            b"not json",
            b"",
        ] {
            assert_eq!(
                decode_client(bad, Encoding::Json, 1024).unwrap_err().code(),
                ErrorCode::BadFrame
            );
        }
        assert_eq!(
            decode_client(&[0xc1, 0x00], Encoding::MsgPack, 1024)
                .unwrap_err()
                .code(),
            ErrorCode::BadFrame
        );
    }

    #[test]
    fn error_frame_carries_numeric_code_and_ref() {
        let f = ServerFrame::error(ErrorCode::Forbidden, "not yours", Some("c9".into()));
        let s = String::from_utf8(encode_server(&f, Encoding::Json).to_vec()).unwrap();
        assert_eq!(
            s,
            r#"{"type":"error","code":4005,"message":"not yours","ref":"c9"}"#
        );
    }
}
