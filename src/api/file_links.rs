//! Short-lived signed download links, so a file link a browser follows never carries a
//! participant's token. An authenticated `POST /api/files/{id}/link` checks the download is
//! allowed now and answers a URL signed for that file, that caller (an agent with its session
//! version, or a visitor) and `LINK_TTL_S` seconds. Following it checks the signature and
//! expiry, then the download rules again (a session ended since refuses it).

use super::auth::{agent_of_token, bearer};
use super::files::{files_error, Refused};
use super::{err, now_s, ApiError};
use crate::chat::identity::{FileLink, Identity};
use crate::chat::{Party, Service};
use crate::protocol::ErrorCode;
use crate::store::{valid_file_id, FilesError};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// How long a download link works, in seconds: long enough for the browser to follow it.
pub const LINK_TTL_S: u64 = 60;

/// How a download request identifies its caller.
#[derive(Deserialize, Default)]
pub(super) struct Credentials {
    /// A visitor token (the widget's links). Agent tokens are refused here.
    pub token: Option<String>,
    /// A signed link: who it was issued to, until when, and the signature.
    pub by: Option<String>,
    pub exp: Option<u64>,
    pub sig: Option<String>,
    /// `image`: serve a raster image inline (thumbnails, previews); anything else is refused.
    pub view: Option<String>,
}

/// The party behind a bearer token: a visitor, or an agent whose session is current.
pub(super) async fn party_of_token(svc: &Service, token: &str) -> Result<Party, ApiError> {
    match svc.tokens.verify(token, now_s()) {
        Ok(Identity::Visitor { id }) => Ok(Party::Visitor { id }),
        Ok(Identity::Agent { .. }) => agent_of_token(svc, token).await?.party(svc).await,
        Err(_) => Err(err(ErrorCode::Forbidden, "the token is invalid or expired")),
    }
}

/// The party a download is for: the `Authorization: Bearer` header, a signed link, or a
/// visitor token in the query.
pub(super) async fn party_from(
    svc: &Service,
    file: &str,
    headers: &HeaderMap,
    c: &Credentials,
) -> Result<Party, ApiError> {
    if let Some(token) = bearer(headers) {
        return party_of_token(svc, token).await;
    }
    if let (Some(by), Some(exp), Some(sig)) = (&c.by, c.exp, &c.sig) {
        return party_of_link(svc, file, by, exp, sig).await;
    }
    match c.token.as_deref() {
        Some(token) => match svc.tokens.verify(token, now_s()) {
            Ok(Identity::Visitor { id }) => Ok(Party::Visitor { id }),
            Ok(Identity::Agent { .. }) => Err(err(
                ErrorCode::Forbidden,
                "agent tokens are not accepted in a URL; use a signed link (POST /api/files/{id}/link)",
            )),
            Err(_) => Err(err(ErrorCode::Forbidden, "the token is invalid or expired")),
        },
        None => Err(err(
            ErrorCode::Forbidden,
            "a visitor or agent token is required (Authorization: Bearer), or a signed link",
        )),
    }
}

async fn party_of_link(
    svc: &Service,
    file: &str,
    by: &str,
    exp: u64,
    sig: &str,
) -> Result<Party, ApiError> {
    let link = FileLink {
        file: file.to_string(),
        party: by.to_string(),
        expires: exp,
    };
    if svc.tokens.verify_file_link(&link, sig, now_s()).is_err() {
        return Err(err(
            ErrorCode::Forbidden,
            "the download link is invalid or expired; ask for a new one",
        ));
    }
    let bad = || err(ErrorCode::Forbidden, "the download link is invalid");
    match by.split(':').collect::<Vec<_>>().as_slice() {
        ["v", id] => Ok(Party::Visitor { id: id.to_string() }),
        ["a", id, session] => {
            let id: i64 = id.parse().map_err(|_| bad())?;
            let session: u64 = session.parse().map_err(|_| bad())?;
            if !svc.agent_session_valid(id, session).await? {
                return Err(err(
                    ErrorCode::Forbidden,
                    "the session has ended; log in again",
                ));
            }
            match svc.store.agent(id).await? {
                Some(a) if !a.disabled => Ok(Party::agent(&a, session)),
                _ => Err(err(ErrorCode::Forbidden, "the agent no longer exists")),
            }
        }
        _ => Err(bad()),
    }
}

/// `POST /api/files/{id}/link`: a signed download URL for the caller.
pub(super) async fn issue(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match issue_link(&svc, &id, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn issue_link(svc: &Service, id: &str, headers: &HeaderMap) -> Result<Response, Refused> {
    let token = bearer(headers).ok_or_else(|| {
        err(
            ErrorCode::Forbidden,
            "a visitor or agent token is required (Authorization: Bearer)",
        )
    })?;
    let party = party_of_token(svc, token).await?;
    if !valid_file_id(id) {
        return Err(files_error(FilesError::NotFound));
    }
    let meta = svc.files.meta(id).await.map_err(files_error)?;
    svc.authorise_download(&party, &meta.chat_id).await?;
    let by = match &party {
        Party::Visitor { id } => format!("v:{id}"),
        Party::Agent { id, session, .. } => format!("a:{id}:{session}"),
    };
    let link = FileLink {
        file: id.to_string(),
        party: by,
        expires: now_s() + LINK_TTL_S,
    };
    let sig = svc.tokens.sign_file_link(&link);
    let url = format!(
        "/api/files/{id}?by={}&exp={}&sig={sig}",
        link.party, link.expires
    );
    Ok(Json(json!({ "url": url, "expires_at": link.expires * 1000 })).into_response())
}
