//! File storage for chat attachments through `object_store`: a local directory by default,
//! S3 (or an S3-compatible service) when `files.url` is `s3://bucket/prefix`.
//!
//! Each file is two objects under a random id chosen by the caller, never the uploader's file
//! name: `ID` holds the bytes and `ID.json` a small [`FileMeta`] sidecar. The sidecar is written
//! last, so a file without one was never completed and is not served. Sidecars (rather than
//! object attributes) because the local store does not keep attributes.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayloadMut, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bytes kept in memory before an upload switches to a multipart upload; also the part size
/// (S3's minimum part size is 5 MiB). Bounds an upload's memory whatever `files.max_bytes` is.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Whether `id` can name a stored file (the ids the node makes: 1-64 ASCII letters and
/// digits), checked before it is used in a path.
pub fn valid_file_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What a download needs to know about a stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub id: String,
    /// The sanitised name given by the uploader (display and download name only).
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub chat_id: String,
    /// `visitor` or `agent`.
    pub uploader_role: String,
    /// The visitor id or agent id of the uploader.
    pub uploader: String,
    /// Unix time in milliseconds.
    pub at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The body went over the limit; nothing was kept.
    #[error("the file is over {0} bytes")]
    TooLarge(u64),
    /// The request body failed mid-way (client gone); nothing was kept.
    #[error("reading the upload: {0}")]
    Body(String),
    #[error("no such file")]
    NotFound,
    /// `files.url` cannot be used.
    #[error("files.url: {0}")]
    Config(String),
    #[error("file storage: {0}")]
    Storage(#[from] object_store::Error),
}

/// A handle on the file storage; cloning it is cheap.
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<dyn ObjectStore>,
    /// The key prefix inside the store (the path of an `s3://` URL; empty for a directory).
    prefix: Path,
    /// What `files.url` resolved to, for logs.
    pub location: String,
}

impl FileStore {
    /// Opens the storage named by `files.url`: `s3://bucket/prefix` (credentials, region and
    /// endpoint from the standard `AWS_*` environment variables), `file:///abs/dir`, or a
    /// directory path (relative to the working directory), created when missing.
    pub fn open(url: &str) -> Result<FileStore, FilesError> {
        if url.starts_with("s3://") {
            return Self::open_s3(url);
        }
        let dir = if url.starts_with("file://") {
            url::Url::parse(url)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| FilesError::Config(format!("`{url}` is not a file:/// URL")))?
        } else if url.contains("://") {
            return Err(FilesError::Config(format!(
                "`{url}`: use a directory, file:///dir or s3://bucket/prefix"
            )));
        } else {
            std::path::PathBuf::from(url)
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| FilesError::Config(format!("creating {}: {e}", dir.display())))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)?
            .with_automatic_cleanup(true);
        Ok(FileStore {
            inner: Arc::new(local),
            prefix: Path::default(),
            location: format!("dir {}", dir.display()),
        })
    }

    fn open_s3(url: &str) -> Result<FileStore, FilesError> {
        // object_store's HTTP client uses rustls without a bundled provider (ring rather than
        // aws-lc keeps the C build small); install it once for the process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let parsed = url::Url::parse(url)
            .map_err(|e| FilesError::Config(format!("`{url}` is not a URL: {e}")))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(FilesError::Config(format!("`{url}` names no bucket")));
        }
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_url(url)
            .build()?;
        let prefix = Path::from_url_path(parsed.path())
            .map_err(|e| FilesError::Config(format!("`{url}` has a bad prefix: {e}")))?;
        Ok(FileStore {
            inner: Arc::new(s3),
            prefix,
            location: url.to_string(),
        })
    }

    fn data_path(&self, id: &str) -> Path {
        self.prefix.clone().join(id)
    }

    fn meta_path(&self, id: &str) -> Path {
        self.prefix.clone().join(format!("{id}.json"))
    }

    /// Stores `body` under `id`, refusing it once it passes `max` bytes (never holding more
    /// than about one part in memory); returns the size. On any error nothing is left behind.
    pub async fn put_data<S, E>(&self, id: &str, body: S, max: u64) -> Result<u64, FilesError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let path = self.data_path(id);
        let mut body = std::pin::pin!(body);
        let mut size: u64 = 0;
        let mut small = PutPayloadMut::new();
        let mut multipart: Option<WriteMultipart> = None;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| FilesError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > max {
                    return Err(FilesError::TooLarge(max));
                }
                match multipart.as_mut() {
                    Some(w) => {
                        w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                        w.put(chunk);
                    }
                    None if small.content_length() + chunk.len() <= PART_BYTES => small.push(chunk),
                    None => {
                        let upload = self.inner.put_multipart(&path).await?;
                        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                        for b in std::mem::take(&mut small).freeze() {
                            w.put(b);
                        }
                        w.put(chunk);
                        multipart = Some(w);
                    }
                }
            }
            Ok(())
        }
        .await;
        match (outcome, multipart) {
            (Ok(()), Some(w)) => {
                w.finish().await?;
            }
            (Ok(()), None) => {
                self.inner.put(&path, small.freeze()).await?;
            }
            (Err(e), Some(w)) => {
                if let Err(abort) = w.abort().await {
                    tracing::warn!(error = %abort, "could not abort a refused upload");
                }
                return Err(e);
            }
            (Err(e), None) => return Err(e),
        }
        Ok(size)
    }

    /// Writes the sidecar that makes the file downloadable.
    pub async fn put_meta(&self, meta: &FileMeta) -> Result<(), FilesError> {
        let json = serde_json::to_vec(meta).expect("file metadata serialises");
        self.inner
            .put(&self.meta_path(&meta.id), Bytes::from(json).into())
            .await?;
        Ok(())
    }

    /// The metadata of a completed file.
    pub async fn meta(&self, id: &str) -> Result<FileMeta, FilesError> {
        let got = match self.inner.get(&self.meta_path(id)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Err(FilesError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let bytes = got.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            tracing::warn!(id, error = %e, "unreadable file metadata");
            FilesError::NotFound
        })
    }

    /// The file's bytes as a stream (read in chunks, not loaded whole).
    pub async fn read(
        &self,
        id: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, FilesError>>, FilesError> {
        match self.inner.get(&self.data_path(id)).await {
            Ok(g) => Ok(g.into_stream().map_err(FilesError::from).boxed()),
            Err(object_store::Error::NotFound { .. }) => Err(FilesError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a file and its sidecar (after a failed upload); missing parts are fine.
    pub async fn delete(&self, id: &str) {
        if let Err(e) = self.remove(id).await {
            tracing::warn!(id, error = %e, "could not delete a file");
        }
    }

    /// Removes a file and its sidecar, sidecar first (so it is never served half-deleted);
    /// missing parts are fine, any other failure is returned (an erasure must know).
    pub async fn remove(&self, id: &str) -> Result<(), FilesError> {
        for path in [self.meta_path(id), self.data_path(id)] {
            match self.inner.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Ids of up to `limit` files stored before `cutoff` (ms): completed ones and uploads that
    /// never got their sidecar alike (retention). Lists the store, so its cost grows with
    /// the number of files kept.
    pub async fn stored_before(
        &self,
        cutoff: i64,
        limit: usize,
    ) -> Result<Vec<String>, FilesError> {
        let mut listing = self.inner.list(Some(&self.prefix));
        let mut ids = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if name.ends_with(".json") || meta.last_modified.timestamp_millis() >= cutoff {
                continue;
            }
            ids.push(name.to_string());
            if ids.len() >= limit {
                break;
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<Vec<u8>>) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p))))
    }

    #[tokio::test]
    async fn small_and_multipart_uploads_round_trip_and_oversize_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("sb-files-{}", uuid::Uuid::new_v4()));
        let fs = FileStore::open(dir.to_str().unwrap()).unwrap();
        let size = fs.put_data(
            "a",
            chunks(vec![b"hello ".to_vec(), b"world".to_vec()]),
            100,
        );
        assert_eq!(size.await.unwrap(), 11);
        let big: Vec<Vec<u8>> = (0..13).map(|i| vec![i as u8; 1024 * 1024]).collect();
        let want: Vec<u8> = big.concat();
        assert_eq!(
            fs.put_data("b", chunks(big), 20 << 20).await.unwrap(),
            13 << 20
        );
        let got: Vec<Bytes> = fs.read("b").await.unwrap().try_collect().await.unwrap();
        assert_eq!(got.concat(), want);
        let big: Vec<Vec<u8>> = (0..13).map(|_| vec![0u8; 1024 * 1024]).collect();
        assert!(matches!(
            fs.put_data("c", chunks(big), 12 << 20).await,
            Err(FilesError::TooLarge(_))
        ));
        assert!(matches!(fs.read("c").await, Err(FilesError::NotFound)));
        assert!(matches!(fs.meta("a").await, Err(FilesError::NotFound)));
        let mut leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        leftovers.sort();
        assert_eq!(leftovers, vec!["a", "b"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn urls() {
        assert!(FileStore::open("http://x/y").is_err());
        let s3 = FileStore::open("s3://bucket/some/prefix").unwrap();
        assert_eq!(s3.data_path("id").as_ref(), "some/prefix/id");
    }
}
