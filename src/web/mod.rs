//! The widget, console and demo site, embedded in the binary and served by every node (see
//! `src/web/README.md` for the files). Every asset gets `nosniff` and `no-cache`; the console
//! also gets a strict Content-Security-Policy.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The widget is one script: the two shared modules, the offline module, the widget's texts
/// and style, and the widget, in one scope.
const WIDGET_JS: &str = concat!(
    "(function(){\n",
    include_str!("shared/socket.js"),
    "\n",
    include_str!("shared/transcript.js"),
    "\n",
    include_str!("widget-offline.js"),
    "\n",
    include_str!("widget-look.js"),
    "\n",
    include_str!("widget.js"),
    "\n})();\n"
);

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
        .route("/widget.js", get(|| async { asset(WIDGET_JS, JS, false) }))
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
