//! What a device says about itself during pairing, and what is kept about a paired device.

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::keys::{SessionKeys, KEY_LEN};

/// Longest device name accepted from the wire, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Self-description exchanged in the handshake (`info_j`, `info_i`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// A short, printable name the other user recognises ("Alice's laptop").
    pub name: String,
}

/// Why a device name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceInfoError {
    /// The name is empty.
    #[error("device name is empty")]
    EmptyName,
    /// The name is longer than [`MAX_NAME_LEN`] bytes (it is this long).
    #[error("device name is {0} bytes long, at most {MAX_NAME_LEN} are allowed")]
    NameTooLong(usize),
    /// The name contains control characters, which a terminal might obey.
    #[error("device name contains control characters")]
    ControlCharacters,
}

impl DeviceInfo {
    /// A device called `name`, if the name is acceptable (see [`validate`](Self::validate)).
    pub fn new(name: impl Into<String>) -> Result<Self, DeviceInfoError> {
        let info = DeviceInfo { name: name.into() };
        info.validate()?;
        Ok(info)
    }

    /// Names come from other devices and end up in terminals: keep them short and printable.
    pub fn validate(&self) -> Result<(), DeviceInfoError> {
        if self.name.is_empty() {
            return Err(DeviceInfoError::EmptyName);
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(DeviceInfoError::NameTooLong(self.name.len()));
        }
        if self.name.chars().any(char::is_control) {
            return Err(DeviceInfoError::ControlCharacters);
        }
        Ok(())
    }
}

/// Which side of the handshake this device played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Generated the code and waited to be found.
    Initiator,
    /// Was told the code and searched for the initiator.
    Joiner,
}

/// The outcome of a pairing, as each side keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedDevice {
    /// The other device, as the transport authenticated it.
    pub peer: PeerId,
    /// What the other device says of itself.
    pub info: DeviceInfo,
    /// The role this device played.
    pub role: Role,
    /// The keys both devices derived; equal on both sides.
    pub keys: SessionKeys,
}

impl PairedDevice {
    /// The long-term secret the two devices now share.
    pub fn pairing_secret(&self) -> &[u8; KEY_LEN] {
        &self.keys.pairing_secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(DeviceInfo::new("laptop").is_ok());
        assert_eq!(DeviceInfo::new(""), Err(DeviceInfoError::EmptyName));
        assert_eq!(
            DeviceInfo::new("a".repeat(65)),
            Err(DeviceInfoError::NameTooLong(65))
        );
        assert_eq!(
            DeviceInfo::new("bad\x1b[2J"),
            Err(DeviceInfoError::ControlCharacters)
        );
    }
}
