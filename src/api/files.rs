//! Chat files both ways: a participant uploads a file into a running chat (stored through
//! [`FileStore`](crate::store::FileStore), announced as a `file` transcript entry) and the
//! chat's participants download it as an attachment that a browser never renders inline,
//! with a bearer token or through a signed link (`file_links`).

use super::file_links::{party_from, party_of_token, Credentials};
use super::{err, ApiError};
use crate::chat::identity::new_id;
use crate::chat::{now_ms, ChatError, Service};
use crate::protocol::ErrorCode;
use crate::store::{valid_file_id, FileMeta, FilesError, StoreError};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Bytes read before storing anything, to check the content against its declared type.
const SNIFF_BYTES: usize = 16;

/// The files routes. Uploads read the raw body as a stream and count it against
/// `files.max_bytes` themselves, so the global `limits.max_body_bytes` does not apply to them.
pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route(
            "/api/chats/{chat_id}/files",
            post(upload).options(super::cors::preflight),
        )
        .route(
            "/api/files/{id}",
            get(download).options(super::cors::preflight),
        )
        .route(
            "/api/files/{id}/link",
            post(super::file_links::issue).options(super::cors::preflight),
        )
}

/// An `ApiError` with a status other than its code's usual one (415 for a refused type).
pub(super) struct Refused(StatusCode, ApiError);

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        let status = StatusCode::from_u16(e.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Refused(status, e)
    }
}

impl From<ChatError> for Refused {
    fn from(e: ChatError) -> Refused {
        ApiError::from(e).into()
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        ApiError::from(e).into()
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut r = self.1.into_response();
        *r.status_mut() = self.0;
        r
    }
}

fn unsupported(message: impl Into<String>) -> Refused {
    Refused(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        err(ErrorCode::InvalidField, message),
    )
}

pub(super) fn files_error(e: FilesError) -> Refused {
    match e {
        FilesError::TooLarge(max) => err(
            ErrorCode::FrameTooLarge,
            format!("the file is over {max} bytes (files.max_bytes)"),
        )
        .into(),
        FilesError::Body(m) => err(
            ErrorCode::InvalidField,
            format!("the upload was interrupted: {m}"),
        )
        .into(),
        FilesError::NotFound => err(ErrorCode::NotFound, "no such file").into(),
        other => {
            tracing::warn!(error = %other, "file storage failure");
            err(
                ErrorCode::Unavailable,
                "the file storage is unavailable, retry",
            )
            .into()
        }
    }
}

type Result<T> = std::result::Result<T, Refused>;

/// A file name as shown to the other side and offered on download. Never used as a storage
/// key, but still refused rather than silently rewritten when it carries a path, control
/// characters or bidirectional overrides (which disguise extensions: `gpj.exe`).
pub fn clean_name(raw: Option<&str>) -> std::result::Result<String, ChatError> {
    let name = raw.map(str::trim).unwrap_or("");
    let bad = |m: &str| Err(ChatError::new(ErrorCode::InvalidField, m));
    if name.is_empty() {
        return bad("name is required (?name=FILE_NAME)");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("name is over 200 characters");
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return bad("name must be a plain file name, without a path");
    }
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if name.chars().any(hidden) {
        return bad("name contains control or formatting characters");
    }
    Ok(name.to_string())
}

/// The MIME type of a `Content-Type` header, lower case, without parameters.
fn mime_of(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether the first bytes fit the declared type, for the types a browser or viewer would
/// interpret. An `image/*` must carry a raster image signature (so SVG, which can hold
/// scripts, is refused); PDF and ZIP must start with their magic numbers.
pub fn content_matches(mime: &str, head: &[u8]) -> bool {
    if mime.starts_with("image/") {
        const SIGNATURES: [&[u8]; 9] = [
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff",
            b"GIF87a",
            b"GIF89a",
            b"BM",
            b"\x00\x00\x01\x00",
            b"II*\x00",
            b"MM\x00*",
            b"RIFF",
        ];
        let riff_ok = !head.starts_with(b"RIFF") || head.get(8..12) == Some(b"WEBP");
        let isobmff = head.get(4..8) == Some(b"ftyp"); // AVIF, HEIC
        return (SIGNATURES.iter().any(|s| head.starts_with(s)) && riff_ok) || isobmff;
    }
    match mime {
        "application/pdf" => head.starts_with(b"%PDF-"),
        "application/zip" => [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"]
            .iter()
            .any(|s| head.starts_with(*s)),
        _ => true,
    }
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

async fn upload(
    State(svc): State<Arc<Service>>,
    Path(chat): Path<String>,
    query: std::result::Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match store_upload(&svc, &chat, query, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn store_upload(
    svc: &Service,
    chat: &str,
    query: std::result::Result<Query<UploadQuery>, QueryRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let token = super::auth::bearer(headers).ok_or_else(|| {
        err(
            ErrorCode::Forbidden,
            "a visitor or agent token is required (Authorization: Bearer)",
        )
    })?;
    let party = party_of_token(svc, token).await?;
    let query = query.map_err(|e| err(ErrorCode::InvalidField, e.body_text()))?;
    let name = clean_name(query.name.as_deref())?;
    let limits = &svc.settings.files;
    let content_type = mime_of(headers);
    if !limits.allows(&content_type) {
        return Err(unsupported(format!(
            "files of type `{content_type}` are not accepted (files.allowed_types)"
        )));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes) {
        return Err(files_error(FilesError::TooLarge(limits.max_bytes)));
    }
    let access = svc.authorise_file(&party, chat).await?;

    let mut body = body.into_data_stream();
    let mut head = Vec::new();
    while head.len() < SNIFF_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => {
                if (head.len() + chunk.len()) as u64 > limits.max_bytes {
                    return Err(files_error(FilesError::TooLarge(limits.max_bytes)));
                }
                head.extend_from_slice(&chunk);
            }
            Some(Err(e)) => return Err(files_error(FilesError::Body(e.to_string()))),
            None => break,
        }
    }
    if head.is_empty() {
        return Err(err(ErrorCode::InvalidField, "the file is empty").into());
    }
    if !content_matches(&content_type, &head) {
        return Err(unsupported(format!(
            "the content is not a `{content_type}` file"
        )));
    }
    let first = futures_util::stream::once(async move { Ok(Bytes::from(head)) });
    let id = new_id();
    let size = svc
        .files
        .put_data(&id, first.chain(body), limits.max_bytes)
        .await
        .map_err(files_error)?;

    let meta = FileMeta {
        id: id.clone(),
        name: name.clone(),
        content_type: content_type.clone(),
        size,
        chat_id: chat.to_string(),
        uploader_role: party.role().into(),
        uploader: party.actor().into_owned(),
        at: now_ms(),
    };
    if let Err(e) = svc.files.put_meta(&meta).await {
        svc.files.delete(&id).await;
        return Err(files_error(e));
    }
    let seq = match svc.send_file(&party, &access, chat, &meta).await {
        Ok(seq) => seq,
        Err(e) => {
            // The chat ended while the file streamed in: keep nothing nobody can see.
            svc.files.delete(&id).await;
            return Err(e.into());
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "seq": seq, "name": name, "size": size, "content_type": content_type,
        })),
    )
        .into_response())
}

async fn download(
    State(svc): State<Arc<Service>>,
    Path(id): Path<String>,
    query: std::result::Result<Query<Credentials>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    match serve(&svc, &id, query, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Who may download: `Service::authorise_download` (while the chat is in Redis its visitor and
/// its agent; after the flush the agents who handled it; admins always).
async fn serve(
    svc: &Service,
    id: &str,
    query: std::result::Result<Query<Credentials>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Response> {
    let query = query.map_err(|e| err(ErrorCode::InvalidField, e.body_text()))?;
    let party = party_from(svc, id, headers, &query).await?;
    if !valid_file_id(id) {
        return Err(files_error(FilesError::NotFound));
    }
    let meta = svc.files.meta(id).await.map_err(files_error)?;
    svc.authorise_download(&party, &meta.chat_id).await?;
    let inline = match query.view.as_deref() {
        None => false,
        Some("image") if inline_image(&meta.content_type) => true,
        Some(_) => {
            return Err(unsupported(
                "only PNG, JPEG, GIF and WebP images can be shown inline",
            ))
        }
    };
    let stream = svc.files.read(id).await.map_err(files_error)?;
    let content_type = if svc.settings.files.allows(&meta.content_type) {
        HeaderValue::from_str(&meta.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    };
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    let disposition = content_disposition(&meta.name);
    h.insert(
        header::CONTENT_DISPOSITION,
        if inline {
            // Same name parameters, shown in place: only for the raster types above.
            disposition
                .to_str()
                .ok()
                .and_then(|d| HeaderValue::from_str(&d.replacen("attachment", "inline", 1)).ok())
                .unwrap_or(HeaderValue::from_static("inline"))
        } else {
            disposition
        },
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    Ok(r)
}

/// Image types a browser may show in place (`?view=image`): raster formats only. SVG is an
/// image type that carries script and markup, so it is only ever a download.
pub fn inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// `attachment` with an ASCII `filename` fallback and the exact name as RFC 5987
/// `filename*` (RFC 6266).
pub fn content_disposition(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(clean_name(Some("  report.pdf ")).unwrap(), "report.pdf");
        assert_eq!(clean_name(Some("résumé 2.pdf")).unwrap(), "résumé 2.pdf");
        for bad in [
            None,
            Some(""),
            Some("../../etc/passwd"),
            Some("a\\b"),
            Some(".."),
            Some("a\u{0}b"),
            Some("gpj\u{202E}.exe"),
        ] {
            assert!(clean_name(bad).is_err(), "{bad:?}");
        }
        assert!(clean_name(Some(&"x".repeat(201))).is_err());
        assert!(clean_name(Some(&"é".repeat(200))).is_ok());
    }

    #[test]
    fn sniffing() {
        assert!(content_matches("image/png", b"\x89PNG\r\n\x1a\n...."));
        assert!(content_matches("image/webp", b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!content_matches("image/webp", b"RIFF\0\0\0\0AVI LIST"));
        assert!(!content_matches("image/svg+xml", b"<svg xmlns="));
        assert!(!content_matches("image/png", b"<html><script>"));
        assert!(content_matches("application/pdf", b"%PDF-1.7"));
        assert!(!content_matches("application/zip", b"%PDF-1.7"));
        assert!(content_matches("text/plain", b"anything"));
    }

    #[test]
    fn disposition() {
        let v = content_disposition("a \"b\"\\é.txt");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"a _b___.txt\"; filename*=UTF-8''a%20%22b%22%5C%C3%A9.txt"
        );
    }
}
