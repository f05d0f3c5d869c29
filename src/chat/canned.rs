//! Placeholders in canned responses: `{visitor_name}`, `{visitor_email}` and `{agent_name}`,
//! each optionally with a default (`{visitor_name|there}`); `{{` and `}}` are literal braces.
//! The parsing is pure: the API checks a text when it is saved, and [`Service::render_canned`]
//! fills it for one chat. The console sends the result as an ordinary `send` frame.

use std::fmt;

use super::{ChatError, ChatResult, Party, Service};
use crate::protocol::ErrorCode;

/// Longest chat id accepted before asking Redis (ids the node issues are 32 characters).
const MAX_CHAT_ID: usize = 64;

/// The placeholders a canned text may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    VisitorName,
    VisitorEmail,
    AgentName,
}

impl Placeholder {
    pub const ALL: [Placeholder; 3] = [
        Placeholder::VisitorName,
        Placeholder::VisitorEmail,
        Placeholder::AgentName,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::VisitorName => "visitor_name",
            Placeholder::VisitorEmail => "visitor_email",
            Placeholder::AgentName => "agent_name",
        }
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// Why a text cannot be rendered. Positions count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("placeholder {0} has no value for this chat")]
    Missing(Placeholder),
    #[error("unknown placeholder {{{0}}}; known: {{visitor_name}}, {{visitor_email}}, {{agent_name}} (write {{{{ and }}}} for literal braces)")]
    Unknown(String),
    #[error("placeholder opened at character {0} is not closed (write {{{{ for a literal {{)")]
    Unclosed(usize),
    #[error("unmatched }} at character {0} (write }}}} for a literal }})")]
    StrayClose(usize),
}

/// The values of one chat; empty strings count as no value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Values<'a> {
    pub visitor_name: &'a str,
    pub visitor_email: &'a str,
    pub agent_name: &'a str,
}

impl Values<'_> {
    fn get(&self, p: Placeholder) -> Option<&str> {
        let v = match p {
            Placeholder::VisitorName => self.visitor_name,
            Placeholder::VisitorEmail => self.visitor_email,
            Placeholder::AgentName => self.agent_name,
        };
        let v = v.trim();
        (!v.is_empty()).then_some(v)
    }
}

enum Piece<'a> {
    Literal(char),
    Text(&'a str),
    Slot {
        placeholder: Placeholder,
        default: Option<&'a str>,
    },
}

/// Walks `text`, handing each piece to `out`; stops at the first error.
fn walk<'a>(
    text: &'a str,
    mut out: impl FnMut(Piece<'a>) -> Result<(), PlaceholderError>,
) -> Result<(), PlaceholderError> {
    let mut chars = text.char_indices().enumerate().peekable();
    let mut plain_from = 0;
    while let Some((pos, (at, c))) = chars.next() {
        if c != '{' && c != '}' {
            continue;
        }
        out(Piece::Text(&text[plain_from..at]))?;
        let doubled = matches!(chars.peek(), Some((_, (_, n))) if *n == c);
        if doubled {
            chars.next();
            out(Piece::Literal(c))?;
            plain_from = at + 2;
            continue;
        }
        if c == '}' {
            return Err(PlaceholderError::StrayClose(pos + 1));
        }
        let body_start = at + 1;
        let Some(len) = text[body_start..].find(['{', '}']) else {
            return Err(PlaceholderError::Unclosed(pos + 1));
        };
        if text.as_bytes()[body_start + len] == b'{' {
            return Err(PlaceholderError::Unclosed(pos + 1));
        }
        let body = &text[body_start..body_start + len];
        let (name, default) = match body.split_once('|') {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let placeholder = Placeholder::from_name(name.trim())
            .ok_or_else(|| PlaceholderError::Unknown(name.trim().to_string()))?;
        out(Piece::Slot {
            placeholder,
            default,
        })?;
        plain_from = body_start + len + 1;
        // Skip the body and the closing brace.
        while matches!(chars.peek(), Some((_, (i, _))) if *i < plain_from) {
            chars.next();
        }
    }
    out(Piece::Text(&text[plain_from..]))
}

/// Checks that a text only uses known placeholders and well-formed braces.
pub fn check(text: &str) -> Result<(), PlaceholderError> {
    walk(text, |_| Ok(()))
}

/// The text with its placeholders filled from `values`, falling back to each one's default.
pub fn render(text: &str, values: &Values<'_>) -> Result<String, PlaceholderError> {
    let mut out = String::with_capacity(text.len());
    walk(text, |piece| {
        match piece {
            Piece::Literal(c) => out.push(c),
            Piece::Text(t) => out.push_str(t),
            Piece::Slot {
                placeholder,
                default,
            } => match (values.get(placeholder), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => return Err(PlaceholderError::Missing(placeholder)),
            },
        }
        Ok(())
    })?;
    Ok(out)
}

impl From<PlaceholderError> for ChatError {
    fn from(e: PlaceholderError) -> ChatError {
        ChatError::new(ErrorCode::InvalidField, e.to_string())
    }
}

impl Service {
    /// `text` filled with the values of `chat`, which must be assigned or offered to the
    /// agent `party`. The visitor's name and e-mail come from the chat request; the agent's
    /// name is the one the agent writes under.
    pub async fn render_canned(&self, party: &Party, chat: &str, text: &str) -> ChatResult<String> {
        if chat.is_empty() || chat.len() > MAX_CHAT_ID {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                format!("chat_id must be 1 to {MAX_CHAT_ID} characters"),
            ));
        }
        let access = self.authorise(party, chat).await?;
        let record = self.redis.chat_record(chat).await?;
        let field = |k: &str| record.get(k).map(String::as_str).unwrap_or("");
        let rendered = render(
            text,
            &Values {
                visitor_name: field("name"),
                visitor_email: field("email"),
                agent_name: &access.display_name,
            },
        )?;
        if rendered.trim().is_empty() {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "the rendered text is empty",
            ));
        }
        let max = self.settings.limits.max_message_chars;
        if rendered.chars().count() > max {
            return Err(ChatError::new(
                ErrorCode::MessageTooLong,
                format!("the rendered text is over {max} characters"),
            ));
        }
        Ok(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Values<'static> = Values {
        visitor_name: "Vera",
        visitor_email: "vera@example.com",
        agent_name: "Ann",
    };

    #[test]
    fn fills_every_placeholder() {
        assert_eq!(
            render(
                "Hi {visitor_name}, I'm {agent_name}. We'll write to {visitor_email}.",
                &ALL
            )
            .unwrap(),
            "Hi Vera, I'm Ann. We'll write to vera@example.com."
        );
        assert_eq!(
            render("{visitor_name}{visitor_name}", &ALL).unwrap(),
            "VeraVera"
        );
        assert_eq!(render("no placeholders", &ALL).unwrap(), "no placeholders");
        assert_eq!(render("", &ALL).unwrap(), "");
    }

    #[test]
    fn defaults_apply_only_without_a_value() {
        assert_eq!(
            render("Hi {visitor_name|there}!", &ALL).unwrap(),
            "Hi Vera!"
        );
        let none = Values::default();
        assert_eq!(
            render("Hi {visitor_name|there}!", &none).unwrap(),
            "Hi there!"
        );
        assert_eq!(render("Hi{visitor_name|}!", &none).unwrap(), "Hi!");
        assert_eq!(
            render("{visitor_name|a|b}", &none).unwrap(),
            "a|b",
            "only the first | separates the default"
        );
        let blank = Values {
            visitor_name: "  ",
            ..ALL
        };
        assert_eq!(render("{visitor_name|you}", &blank).unwrap(), "you");
    }

    #[test]
    fn missing_value_names_the_placeholder() {
        let e = render("Mail: {visitor_email}", &Values::default()).unwrap_err();
        assert_eq!(e, PlaceholderError::Missing(Placeholder::VisitorEmail));
        assert_eq!(
            e.to_string(),
            "placeholder {visitor_email} has no value for this chat"
        );
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let e = render("Hi {customer}", &ALL).unwrap_err();
        assert_eq!(e, PlaceholderError::Unknown("customer".into()));
        assert!(e.to_string().starts_with("unknown placeholder {customer};"));
        assert_eq!(check("{}"), Err(PlaceholderError::Unknown(String::new())));
        assert_eq!(
            check("{Visitor_Name}"),
            Err(PlaceholderError::Unknown("Visitor_Name".into()))
        );
        assert!(check("{ visitor_name }").is_ok(), "spaces around the name");
    }

    #[test]
    fn doubled_braces_are_literal() {
        assert_eq!(
            render("{{visitor_name}} is {visitor_name}", &ALL).unwrap(),
            "{visitor_name} is Vera"
        );
        assert_eq!(render("a {{ b }} c", &ALL).unwrap(), "a { b } c");
        assert_eq!(render("{{{visitor_name}}}", &ALL).unwrap(), "{Vera}");
    }

    #[test]
    fn malformed_braces_are_refused() {
        assert_eq!(
            check("Hi {visitor_name"),
            Err(PlaceholderError::Unclosed(4))
        );
        assert_eq!(
            check("{visitor_name {agent_name}"),
            Err(PlaceholderError::Unclosed(1))
        );
        assert_eq!(check("a } b"), Err(PlaceholderError::StrayClose(3)));
        assert_eq!(check("é}"), Err(PlaceholderError::StrayClose(2)));
        assert_eq!(check("{"), Err(PlaceholderError::Unclosed(1)));
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(
            render("Grüß dich, {visitor_name|Gast} — 👋", &Values::default()).unwrap(),
            "Grüß dich, Gast — 👋"
        );
    }

    #[test]
    fn checks_match_rendering() {
        for text in ["{agent_name}", "{{x}}", "{visitor_email|none}", "plain"] {
            assert!(check(text).is_ok(), "{text}");
            assert!(render(text, &ALL).is_ok(), "{text}");
        }
    }
}
