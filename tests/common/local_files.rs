//! A local directory of a test's own as the files store (`files.url`), and what it holds.

use std::path::{Path, PathBuf};
use switchboard::config::Settings;

/// A directory name no other test uses (created by the files store when it first writes).
pub fn files_dir() -> PathBuf {
    std::env::temp_dir().join(format!("sb-files-{}", uuid::Uuid::new_v4().simple()))
}

/// The cluster's files in `dir`; webhooks may go to the test's loopback receivers.
pub fn files_in(dir: &Path) -> impl FnOnce(&mut Settings) + '_ {
    move |s: &mut Settings| {
        s.files.url = dir.to_str().unwrap().to_string();
        s.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
    }
}

/// Objects in the file directory whose name starts with `id`.
pub fn stored_objects(dir: &Path, id: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(id))
            })
            .count()
        })
        .unwrap_or(0)
}
