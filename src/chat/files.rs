//! Who may download a chat's files, and the files a trashed chat takes with it.
//!
//! While the chat is in Redis: its visitor and its agent. Once it is flushed: the agents who
//! handled it (joined it or decided what became of it), never its visitor. Supervisors and
//! admins always: they may read any chat live (read-only follow) and afterwards, so its files
//! too. A trashed chat's files are deleted from the file storage when it is flushed.

use super::{ChatError, ChatResult, Party, Service};
use crate::protocol::ErrorCode;
use crate::store::TranscriptEntry;

impl Service {
    /// Allows or refuses a download of a file of `chat` by `party`.
    pub async fn authorise_download(&self, party: &Party, chat: &str) -> ChatResult<()> {
        let refusal = match self.authorise(party, chat).await {
            Ok(_) => return Ok(()),
            Err(e) if matches!(e.code, ErrorCode::NotFound | ErrorCode::Forbidden) => e,
            Err(e) => return Err(e),
        };
        let Party::Agent { id, .. } = party else {
            return Err(match refusal.code {
                ErrorCode::NotFound => ChatError::new(
                    ErrorCode::Forbidden,
                    "the chat is over; its files are available to agents only",
                ),
                _ => refusal,
            });
        };
        // The role as the store has it now, not as the connection or token knew it.
        let overseer = self
            .store
            .agent(*id)
            .await?
            .is_some_and(|a| (a.role == "admin" || a.role == "supervisor") && !a.disabled);
        if refusal.code == ErrorCode::Forbidden {
            // A live chat of someone else: only a supervisor or an admin.
            return if overseer { Ok(()) } else { Err(refusal) };
        }
        let Some(message) = self.store.message_by_chat(chat).await? else {
            return Err(ChatError::new(ErrorCode::NotFound, "no such file"));
        };
        if message.trashed {
            return Err(ChatError::new(ErrorCode::NotFound, "no such file"));
        }
        if overseer || message.handled_by(*id) {
            Ok(())
        } else {
            Err(ChatError::new(
                ErrorCode::Forbidden,
                "only the agents who handled the chat, supervisors and admins may download its files",
            ))
        }
    }

    /// Deletes the files a trashed chat's transcript announces (idempotent: files already gone
    /// are fine). An error leaves the flush job pending, so it is tried again.
    pub(crate) async fn delete_chat_files(
        &self,
        entries: &[TranscriptEntry],
    ) -> Result<(), crate::store::FilesError> {
        for id in entries
            .iter()
            .filter(|e| e.event == "file")
            .filter_map(|e| e.data.as_ref()?.get("id")?.as_str())
            .filter(|id| crate::store::valid_file_id(id))
        {
            self.files.remove(id).await?;
            self.metrics.files_deleted.inc();
        }
        Ok(())
    }
}
