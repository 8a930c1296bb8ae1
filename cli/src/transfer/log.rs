//! What arrived, for `paircode received`: kept encrypted in the instance's store like the
//! device list (texts are in it), newest last, trimmed so the file stays small.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::{StoreError, Vault};

pub const RECEIVED_FILE: &str = "received";
/// The newest entries kept.
pub const MAX_ENTRIES: usize = 1000;
/// The log's size, roughly, at most: it travels to `paircode received` in one IPC frame
/// (`ipc::MAX_FRAME_LEN`).
pub const MAX_LOG_BYTES: usize = 768 * 1024;
/// An entry's fields besides its texts, generously.
const ENTRY_OVERHEAD: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedEntry {
    /// Unix seconds.
    pub time: u64,
    /// The sending device's name and peer id.
    pub from: String,
    pub peer_id: String,
    #[serde(flatten)]
    pub what: ReceivedWhat,
    pub size: u64,
    /// Hex.
    pub sha256: String,
    /// Bytes that had arrived in an earlier, interrupted transfer.
    pub resumed_from: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceivedWhat {
    /// `name` as the sender named it; `path` where it was stored.
    File {
        name: String,
        path: PathBuf,
    },
    Text {
        text: String,
    },
}

/// What `received --follow` is told as transfers arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arriving {
    /// An item from device `from` starts; `offset` bytes were held from before.
    Started {
        from: String,
        name: String,
        size: u64,
        offset: u64,
    },
    Bytes {
        from: String,
        done: u64,
    },
    Arrived(ReceivedEntry),
    /// A transfer from `from` ended early (refused, cancelled, broken off).
    Failed {
        from: String,
        error: String,
    },
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ReceivedLog {
    pub entries: Vec<ReceivedEntry>,
}

impl ReceivedLog {
    pub fn load(vault: &Vault) -> Result<Self, StoreError> {
        Ok(vault.read(RECEIVED_FILE)?.unwrap_or_default())
    }

    pub fn save(&self, vault: &Vault) -> Result<(), StoreError> {
        vault.write(RECEIVED_FILE, self)
    }

    /// Adds `entry`, dropping the oldest entries beyond the limits.
    pub fn push(&mut self, entry: ReceivedEntry) {
        self.entries.push(entry);
        let mut total: usize = self.entries.iter().map(weight).sum();
        let mut drop = 0;
        while self.entries.len() - drop > MAX_ENTRIES || total > MAX_LOG_BYTES {
            total -= weight(&self.entries[drop]);
            drop += 1;
        }
        self.entries.drain(..drop);
    }
}

/// An entry's size in the log, roughly.
fn weight(entry: &ReceivedEntry) -> usize {
    let texts = match &entry.what {
        ReceivedWhat::Text { text } => text.len(),
        ReceivedWhat::File { name, path } => name.len() + path.as_os_str().len(),
    };
    ENTRY_OVERHEAD + entry.from.len() + entry.peer_id.len() + texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> ReceivedEntry {
        ReceivedEntry {
            time: 1,
            from: "bob".into(),
            peer_id: "p".into(),
            what: ReceivedWhat::Text {
                text: "x".repeat(n),
            },
            size: n as u64,
            sha256: String::new(),
            resumed_from: 0,
        }
    }

    #[test]
    fn trimmed_oldest_first() {
        let mut log = ReceivedLog::default();
        for _ in 0..MAX_ENTRIES + 5 {
            log.push(text(1));
        }
        assert_eq!(log.entries.len(), MAX_ENTRIES);
        let big = 64 * 1024;
        for _ in 0..20 {
            log.push(text(big));
        }
        assert!(log.entries.iter().map(weight).sum::<usize>() <= MAX_LOG_BYTES);
        assert_eq!(log.entries.last().unwrap().size, big as u64);
        // What the log holds fits in one IPC frame.
        let mut bytes = Vec::new();
        ciborium::into_writer(&log, &mut bytes).unwrap();
        assert!(bytes.len() < crate::ipc::MAX_FRAME_LEN, "{}", bytes.len());
    }
}
