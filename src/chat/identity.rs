//! Signed tokens: a visitor's anonymous identity and an agent's session. Signed with HMAC-SHA256
//! over the payload with `auth.token_secret`, so any node verifies any token. An agent token
//! also names the agent's session version, checked against Redis on every use
//! (`chat::sessions`): raising the version ends every session of the agent at once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Who is on the other end of a connection or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Visitor {
        id: String,
    },
    /// The role is not in the token: it is read from the store when it matters.
    Agent {
        id: i64,
        session: u64,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
}

#[derive(Clone)]
pub struct Tokens {
    key: Vec<u8>,
    visitor_ttl_s: u64,
    agent_ttl_s: u64,
}

impl Tokens {
    pub fn new(secret: &str, visitor_ttl_s: u64, agent_ttl_s: u64) -> Tokens {
        Tokens {
            key: secret.as_bytes().to_vec(),
            visitor_ttl_s,
            agent_ttl_s,
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(payload);
        m
    }

    fn sign(&self, payload: String) -> String {
        let tag = self.mac(payload.as_bytes()).finalize().into_bytes();
        format!("{}.{}", B64.encode(payload), B64.encode(tag))
    }

    pub fn issue(&self, who: &Identity, now_s: u64) -> String {
        match who {
            Identity::Visitor { id } => self.sign(format!("v|{id}|{}", now_s + self.visitor_ttl_s)),
            Identity::Agent { id, session } => {
                self.sign(format!("a|{id}|{session}|{}", now_s + self.agent_ttl_s))
            }
        }
    }

    pub fn verify(&self, token: &str, now_s: u64) -> Result<Identity, TokenError> {
        let (p, t) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = B64.decode(p).map_err(|_| TokenError::Malformed)?;
        let tag = B64.decode(t).map_err(|_| TokenError::Malformed)?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let parts: Vec<&str> = payload.split('|').collect();
        let (who, exp) = match parts.as_slice() {
            ["v", id, exp] => (Identity::Visitor { id: id.to_string() }, exp),
            ["a", id, session, exp] => (
                Identity::Agent {
                    id: id.parse().map_err(|_| TokenError::Malformed)?,
                    session: session.parse().map_err(|_| TokenError::Malformed)?,
                },
                exp,
            ),
            _ => return Err(TokenError::Malformed),
        };
        let exp: u64 = exp.parse().map_err(|_| TokenError::Malformed)?;
        if exp < now_s {
            return Err(TokenError::Expired);
        }
        Ok(who)
    }
}

/// A signed download link: the file, who may use it and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    pub file: String,
    /// `a:AGENT:SESSION` or `v:VISITOR`: the party the link was issued to.
    pub party: String,
    /// Unix seconds; valid up to and including that second.
    pub expires: u64,
}

impl FileLink {
    /// The signed text: `f|` keeps it apart from token payloads (`v|`, `a|`).
    fn payload(&self) -> String {
        format!("f|{}|{}|{}", self.file, self.party, self.expires)
    }
}

impl Tokens {
    /// The signature of a download link (URL-safe base64).
    pub fn sign_file_link(&self, link: &FileLink) -> String {
        B64.encode(self.mac(link.payload().as_bytes()).finalize().into_bytes())
    }

    /// Checks a download link's signature (constant time) and expiry.
    pub fn verify_file_link(
        &self,
        link: &FileLink,
        signature: &str,
        now_s: u64,
    ) -> Result<(), TokenError> {
        let tag = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        self.mac(link.payload().as_bytes())
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        if link.expires < now_s {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// The signature a site computes to vouch for a visitor's e-mail: lowercase hex
/// HMAC-SHA256 of the e-mail under `auth.identify_secret`.
pub fn identify_signature(secret: &str, email: &str) -> String {
    let mut m =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(email.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a site's signature in constant time.
pub fn identify_signature_ok(secret: &str, email: &str, signature: &str) -> bool {
    let hex = signature.trim().as_bytes();
    if hex.len() != 64 {
        return false;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut tag = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => tag[i] = h << 4 | l,
            _ => return false,
        }
    }
    let mut m =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(email.as_bytes());
    m.verify_slice(&tag).is_ok()
}

/// A new random id (visitor ids, chat ids): 128 bits, URL-safe.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let t = Tokens::new("k".repeat(32).as_str(), 100, 10);
        let v = Identity::Visitor { id: "abc".into() };
        let tok = t.issue(&v, 1000);
        assert_eq!(t.verify(&tok, 1050).unwrap(), v);
        assert_eq!(t.verify(&tok, 1101).unwrap_err(), TokenError::Expired);
        let forged = tok.replacen('.', "x.", 1);
        assert!(t.verify(&forged, 1000).is_err());
        let other = Tokens::new("z".repeat(32).as_str(), 100, 10);
        assert_eq!(
            other.verify(&tok, 1000).unwrap_err(),
            TokenError::BadSignature
        );
        let a = Identity::Agent { id: 7, session: 3 };
        assert_eq!(t.verify(&t.issue(&a, 5), 6).unwrap(), a);
        // The token format of before session versions (a role where the version is) is refused.
        let old = t.sign(format!("a|7|admin|{}", 100));
        assert_eq!(t.verify(&old, 6).unwrap_err(), TokenError::Malformed);
        assert_eq!(t.verify("garbage", 0).unwrap_err(), TokenError::Malformed);
    }

    #[test]
    fn file_links_are_bound_to_file_party_and_time() {
        let t = Tokens::new("k".repeat(32).as_str(), 100, 10);
        let link = FileLink {
            file: "f1".into(),
            party: "a:7:2".into(),
            expires: 50,
        };
        let sig = t.sign_file_link(&link);
        assert_eq!(t.verify_file_link(&link, &sig, 50), Ok(()));
        assert_eq!(
            t.verify_file_link(&link, &sig, 51),
            Err(TokenError::Expired)
        );
        for other in [
            FileLink {
                file: "f2".into(),
                ..link.clone()
            },
            FileLink {
                party: "a:8:2".into(),
                ..link.clone()
            },
            FileLink {
                party: "a:7:3".into(),
                ..link.clone()
            },
            FileLink {
                expires: 5000,
                ..link.clone()
            },
        ] {
            assert_eq!(
                t.verify_file_link(&other, &sig, 1),
                Err(TokenError::BadSignature)
            );
        }
        // A link's signature is not a token.
        assert!(t
            .verify(&format!("{}.{sig}", B64.encode(link.payload())), 1)
            .is_err());
    }

    #[test]
    fn site_signatures_verify_and_reject_tampering() {
        let secret = "s".repeat(32);
        let sig = identify_signature(&secret, "ann@example.com");
        assert_eq!(sig.len(), 64);
        assert!(identify_signature_ok(&secret, "ann@example.com", &sig));
        assert!(identify_signature_ok(
            &secret,
            "ann@example.com",
            &sig.to_uppercase()
        ));
        assert!(!identify_signature_ok(&secret, "eve@example.com", &sig));
        assert!(!identify_signature_ok(
            &"t".repeat(32),
            "ann@example.com",
            &sig
        ));
        assert!(!identify_signature_ok(&secret, "ann@example.com", "zz"));
        assert!(!identify_signature_ok(
            &secret,
            "ann@example.com",
            &"g".repeat(64)
        ));
    }
}
