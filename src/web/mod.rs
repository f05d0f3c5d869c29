//! The widget, console and demo site, embedded in the binary and served by every node (see
//! `src/web/README.md` for the files). Every asset gets `nosniff` and `no-cache`; the console
//! also gets a strict Content-Security-Policy.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The widget's sources in serving order: the two shared modules, the widget's modules (each
/// defines one `Sb*` name the later ones use), its texts and style, its DOM, and the widget.
const WIDGET_SOURCES: [&str; 12] = [
    include_str!("shared/socket.js"),
    include_str!("shared/transcript.js"),
    include_str!("widget-offline.js"),
    include_str!("widget-files.js"),
    include_str!("widget-after.js"),
    include_str!("widget-invite.js"),
    include_str!("widget-signals.js"),
    include_str!("widget-prechat.js"),
    include_str!("widget-session.js"),
    include_str!("widget-look.js"),
    include_str!("widget-view.js"),
    include_str!("widget.js"),
];

/// The widget is one script, in one scope, without its comment lines: every visitor's browser
/// downloads it, and the comments are for the people reading `src/web/`, not for browsers
/// (about a fifth of the gzipped size).
static WIDGET_JS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut out = String::from("(function(){\n");
    for src in WIDGET_SOURCES {
        out.push_str(&without_comment_lines(src));
        out.push('\n');
    }
    out.push_str("})();\n");
    out
});

/// Drops blank lines, lines that are only a `//` comment and `/* ... */` comments that start a
/// line. Code lines, and comments at the end of code lines, stay as they are. Sound for these
/// files because none of them has a string or template spanning lines (plain ES5 in the widget).
pub fn without_comment_lines(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_block = false;
    for line in src.lines() {
        let t = line.trim_start();
        if in_block {
            in_block = !t.contains("*/");
            continue;
        }
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        if t.starts_with("/*") {
            in_block = !t.contains("*/");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const CONSOLE_CSP: &str =
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str, csp: bool) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if csp {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONSOLE_CSP),
        );
    }
    r
}

macro_rules! serve {
    ($file:literal, $ct:expr, $csp:expr) => {
        get(|| async { asset(include_str!($file), $ct, $csp) })
    };
}

pub fn routes() -> Router {
    Router::new()
        .route(
            "/widget.js",
            get(|| async { asset(WIDGET_JS.as_str(), JS, false) }),
        )
        .route("/", get(|| async { Redirect::temporary("/demo/") }))
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", serve!("console/index.html", HTML, true))
        .route(
            "/console/console.css",
            serve!("console/console.css", CSS, true),
        )
        .route(
            "/console/console.js",
            serve!("console/console.js", JS, true),
        )
        .route(
            "/console/strings.js",
            serve!("console/strings.js", JS, true),
        )
        .route("/console/api.js", serve!("console/api.js", JS, true))
        .route("/console/offers.js", serve!("console/offers.js", JS, true))
        .route(
            "/console/waiting.js",
            serve!("console/waiting.js", JS, true),
        )
        .route("/console/inbox.js", serve!("console/inbox.js", JS, true))
        .route("/console/chats.js", serve!("console/chats.js", JS, true))
        .route(
            "/console/after-chat.js",
            serve!("console/after-chat.js", JS, true),
        )
        .route(
            "/console/monitor.js",
            serve!("console/monitor.js", JS, true),
        )
        .route(
            "/console/history.js",
            serve!("console/history.js", JS, true),
        )
        .route(
            "/console/visitors.js",
            serve!("console/visitors.js", JS, true),
        )
        .merge(chat_view_routes())
        .route(
            "/console/admin/admin.css",
            serve!("console/admin/admin.css", CSS, true),
        )
        .route(
            "/console/admin/admin.js",
            serve!("console/admin/admin.js", JS, true),
        )
        .route(
            "/console/admin/strings.js",
            serve!("console/admin/strings.js", JS, true),
        )
        .route(
            "/console/admin/common.js",
            serve!("console/admin/common.js", JS, true),
        )
        .route(
            "/console/admin/agents.js",
            serve!("console/admin/agents.js", JS, true),
        )
        .route(
            "/console/admin/queues.js",
            serve!("console/admin/queues.js", JS, true),
        )
        .route(
            "/console/admin/appearance.js",
            serve!("console/admin/appearance.js", JS, true),
        )
        .route(
            "/console/admin/webhooks.js",
            serve!("console/admin/webhooks.js", JS, true),
        )
        .route(
            "/console/admin/privacy.js",
            serve!("console/admin/privacy.js", JS, true),
        )
        .route("/console/socket.js", serve!("shared/socket.js", JS, true))
        .route(
            "/console/transcript.js",
            serve!("shared/transcript.js", JS, true),
        )
        .route("/demo", get(|| async { Redirect::permanent("/demo/") }))
        .route("/demo/", serve!("demo/index.html", HTML, false))
        .route("/demo/index.html", serve!("demo/index.html", HTML, false))
        .route(
            "/demo/pricing.html",
            serve!("demo/pricing.html", HTML, false),
        )
        .route(
            "/demo/contact.html",
            serve!("demo/contact.html", HTML, false),
        )
}

/// The modules of the console's chat view (`chats.js` and what it is made of).
fn chat_view_routes() -> Router {
    Router::new()
        .route(
            "/console/chat_view.js",
            serve!("console/chat_view.js", JS, true),
        )
        .route(
            "/console/canned_picker.js",
            serve!("console/canned_picker.js", JS, true),
        )
        .route(
            "/console/transfer_picker.js",
            serve!("console/transfer_picker.js", JS, true),
        )
        .route("/console/wrapup.js", serve!("console/wrapup.js", JS, true))
        .route(
            "/console/uploads.js",
            serve!("console/uploads.js", JS, true),
        )
        .route("/console/notify.js", serve!("console/notify.js", JS, true))
        .route(
            "/console/visitor_panel.js",
            serve!("console/visitor_panel.js", JS, true),
        )
        .route(
            "/console/visitor_facts.js",
            serve!("console/visitor_facts.js", JS, true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_lines_go_code_stays() {
        let src = "/* head\n * more */\nvar a = 'http://x'; // why\n  // alone\n\n  /** one */\nvar b = /\\/\\//;\n";
        assert_eq!(
            without_comment_lines(src),
            "var a = 'http://x'; // why\nvar b = /\\/\\//;\n"
        );
        assert!(WIDGET_JS.starts_with("(function(){\n"));
        assert!(WIDGET_JS.contains("var SbWidgetView"));
    }
}
