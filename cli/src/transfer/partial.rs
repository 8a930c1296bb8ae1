//! Half-received files, kept for resuming. A partial file is named after who sent it and
//! what it will be (sender, the sender's file id, size), so the same file sent again by the
//! same device continues it, and nothing else can. They live in a hidden directory inside the
//! downloads directory (same file system: finishing one is a link, not a copy), and are
//! swept after a week.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use paircode_core::PeerId;
use sha2::{Digest, Sha256};

use super::wire::FileId;

pub const PARTIAL_DIR: &str = ".paircode-partial";
/// Partial files untouched for this long are removed when the daemon starts.
pub const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn key(sender: &PeerId, id: &FileId, size: u64) -> String {
    let mut h = Sha256::new();
    h.update(b"paircode-send partial 2\0");
    h.update(sender.as_bytes());
    h.update(id);
    h.update(size.to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

pub fn path(downloads: &Path, key: &str) -> PathBuf {
    downloads.join(PARTIAL_DIR).join(format!("{key}.part"))
}

/// Removes partial files older than [`KEEP_FOR`]; returns how many.
pub fn sweep(downloads: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(downloads.join(PARTIAL_DIR)) else {
        return 0;
    };
    let now = SystemTime::now();
    entries
        .flatten()
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > KEEP_FOR)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// The partial files being written right now: two streams never write one.
#[derive(Clone, Default)]
pub struct Active(Arc<Mutex<HashSet<String>>>);

impl Active {
    /// Claims `key` until the guard drops; `None` if another stream holds it.
    pub fn claim(&self, key: &str) -> Option<Claim> {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        set.insert(key.to_string()).then(|| Claim {
            active: self.clone(),
            key: key.to_string(),
        })
    }
}

pub struct Claim {
    active: Active,
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.active
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_senders_and_contents() {
        let a = PeerId::from_bytes(&[0, 36, 8, 1, 18, 32, 1, 1, 1]).unwrap();
        let b = PeerId::from_bytes(&[0, 36, 8, 1, 18, 32, 2, 2, 2]).unwrap();
        assert_eq!(key(&a, &[1; 16], 5), key(&a, &[1; 16], 5));
        assert_ne!(key(&a, &[1; 16], 5), key(&b, &[1; 16], 5));
        assert_ne!(key(&a, &[1; 16], 5), key(&a, &[2; 16], 5));
        assert_ne!(key(&a, &[1; 16], 5), key(&a, &[1; 16], 6));
        let active = Active::default();
        let claim = active.claim("k").unwrap();
        assert!(active.claim("k").is_none());
        drop(claim);
        assert!(active.claim("k").is_some());
    }
}
