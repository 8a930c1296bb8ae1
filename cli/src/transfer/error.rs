//! Why a transfer failed: on the sender ([`TransferError`]), or as the receiver told it
//! ([`Refusal`], which travels on the stream). Both are typed end to end; each knows its
//! exit code and its stable `kind`, which `CliError` defers to.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why the receiver refused or failed an item, as it tells the sender on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Refusal {
    #[error(
        "it has receiving turned off for this device (`paircode network receive DEVICE on` there)"
    )]
    ReceivingOff,
    #[error("it refused the name {name:?}: {why}")]
    UnsafeName { name: String, why: String },
    #[error("the text is {size} bytes; at most {max} are accepted")]
    TextTooLarge { size: u64, max: u64 },
    #[error("it has no room: {needed} bytes needed, {available} available; nothing was kept")]
    DiskFull { needed: u64, available: u64 },
    #[error("it received more bytes than the {declared} announced; nothing was kept")]
    SizeMismatch { declared: u64 },
    #[error(
        "the SHA-256 of what it received does not match the sender's (did the file change \
         since an interrupted send?); nothing was kept, sending again starts over"
    )]
    HashMismatch,
    #[error("the same file is already arriving from this device")]
    Busy,
    #[error("it could not store the item: {0}")]
    Storage(String),
    #[error("it could not read what was sent: {0}")]
    Protocol(String),
}

/// Why `paircode send` failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum TransferError {
    #[error("{device} is offline ({}): {reason}", seen(*.last_seen))]
    Offline {
        device: String,
        /// Unix seconds.
        last_seen: Option<u64>,
        reason: String,
    },
    #[error("{device} reset the stream without answering: it does not have this device paired (any more)")]
    NotPairedThere { device: String },
    #[error("{device} does not accept transfers (its paircode is older)")]
    Unsupported { device: String },
    #[error("{device} refused: {refusal}")]
    Refused { device: String, refusal: Refusal },
    #[error(
        "the connection to {device} was lost: {cause}; sending again resumes where it stopped"
    )]
    Lost { device: String, cause: String },
    #[error("{device} answered something unreadable: {cause}")]
    Protocol { device: String, cause: String },
    #[error("{}: {why}", .path.display())]
    NotSendable { path: PathBuf, why: String },
    #[error("reading {}: {cause}", .path.display())]
    Source { path: PathBuf, cause: String },
    #[error("nothing to send: the directories hold no files")]
    NothingToSend,
    #[error("the text is {size} bytes; at most {max} can be sent (send a file instead)")]
    TextTooLarge { size: u64, max: u64 },
    #[error("cancelled; nothing was kept on the device")]
    Cancelled,
}

fn seen(last_seen: Option<u64>) -> String {
    let Some(at) = last_seen else {
        return "never seen since pairing".to_string();
    };
    let now = crate::daemon::unix_now();
    let ago = std::time::Duration::from_secs(now.saturating_sub(at));
    format!(
        "last seen {} ago, at {}",
        humantime::format_duration(ago),
        crate::progress::time(at)
    )
}

impl TransferError {
    /// See `CliError::exit_code`'s table (15 to 18).
    pub fn exit_code(&self) -> u8 {
        match self {
            TransferError::Offline { .. } => 15,
            TransferError::NotPairedThere { .. } | TransferError::Unsupported { .. } => 16,
            TransferError::Refused { refusal, .. } => match refusal {
                Refusal::ReceivingOff
                | Refusal::UnsafeName { .. }
                | Refusal::TextTooLarge { .. }
                | Refusal::Busy => 16,
                Refusal::DiskFull { .. } => 17,
                Refusal::SizeMismatch { .. } | Refusal::HashMismatch => 18,
                Refusal::Storage(_) | Refusal::Protocol(_) => 1,
            },
            TransferError::Lost { .. } => 18,
            TransferError::Protocol { .. } | TransferError::Source { .. } => 1,
            TransferError::NotSendable { .. }
            | TransferError::NothingToSend
            | TransferError::TextTooLarge { .. } => 2,
            TransferError::Cancelled => 11,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TransferError::Offline { .. } => "device_offline",
            TransferError::NotPairedThere { .. } => "not_paired_there",
            TransferError::Unsupported { .. } => "unsupported",
            TransferError::Refused { refusal, .. } => match refusal {
                Refusal::ReceivingOff => "receiving_off",
                Refusal::UnsafeName { .. } => "unsafe_name",
                Refusal::TextTooLarge { .. } => "text_too_large",
                Refusal::DiskFull { .. } => "disk_full",
                Refusal::SizeMismatch { .. } => "size_mismatch",
                Refusal::HashMismatch => "hash_mismatch",
                Refusal::Busy => "transfer_busy",
                Refusal::Storage(_) => "receiver_storage",
                Refusal::Protocol(_) => "receiver_protocol",
            },
            TransferError::Lost { .. } => "connection_lost",
            TransferError::Protocol { .. } => "protocol",
            TransferError::NotSendable { .. } => "not_sendable",
            TransferError::Source { .. } => "source_unreadable",
            TransferError::NothingToSend => "nothing_to_send",
            TransferError::TextTooLarge { .. } => "text_too_large",
            TransferError::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CliError;
    use crate::ipc::DaemonError;

    #[test]
    fn transfer_errors_keep_their_codes_across_the_socket() {
        let cases = [
            (
                TransferError::Offline {
                    device: "bob".into(),
                    last_seen: Some(1),
                    reason: "refused".into(),
                },
                15,
                "device_offline",
            ),
            (
                TransferError::Refused {
                    device: "bob".into(),
                    refusal: Refusal::ReceivingOff,
                },
                16,
                "receiving_off",
            ),
            (
                TransferError::Refused {
                    device: "bob".into(),
                    refusal: Refusal::DiskFull {
                        needed: 2,
                        available: 1,
                    },
                },
                17,
                "disk_full",
            ),
            (
                TransferError::Refused {
                    device: "bob".into(),
                    refusal: Refusal::HashMismatch,
                },
                18,
                "hash_mismatch",
            ),
            (TransferError::Cancelled, 11, "cancelled"),
        ];
        for (error, exit, kind) in cases {
            let daemon = DaemonError::from(error.clone());
            let mut bytes = Vec::new();
            ciborium::into_writer(&daemon, &mut bytes).unwrap();
            let back: DaemonError = ciborium::from_reader(bytes.as_slice()).unwrap();
            assert_eq!(back, daemon);
            let cli = CliError::from(back);
            assert_eq!((cli.exit_code(), cli.kind()), (exit, kind), "{error:?}");
            assert_eq!(cli.to_string(), error.to_string());
        }
        let offline = TransferError::Offline {
            device: "bob".into(),
            last_seen: None,
            reason: "no route".into(),
        };
        assert_eq!(
            offline.to_string(),
            "bob is offline (never seen since pairing): no route"
        );
    }
}
