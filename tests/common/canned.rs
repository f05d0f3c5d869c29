//! Helpers for the canned-response tests: fields for the store, lists and refusals from the
//! HTTP API.

use serde_json::Value;
use switchboard::store::CannedFields;

pub fn fields(title: &str, shortcut: &str, text: &str) -> CannedFields {
    CannedFields {
        title: title.into(),
        shortcut: shortcut.into(),
        text: text.into(),
    }
}

/// The shortcuts of a `GET /api/canned` answer, in order.
pub fn shortcuts(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|c| c["shortcut"].as_str().unwrap())
        .collect()
}

/// Asserts a handler error: status, numeric code, and a message containing `needle`.
#[track_caller]
pub fn refused(got: &(u16, Value), status: u16, code: u16, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    let message = got.1["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}
