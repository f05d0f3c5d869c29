//! The widget, console and demo site, embedded in the binary and served by every node.

use axum::Router;

pub fn routes() -> Router {
    Router::new()
}
