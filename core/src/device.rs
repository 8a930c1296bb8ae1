//! What a device says about itself during pairing, and what is kept about a paired device.

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::keys::{SessionKeys, KEY_LEN};

/// Longest device name accepted from the wire, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Self-description exchanged in the handshake (`info_j`, `info_i`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceInfoError {
    #[error("device name is empty")]
    EmptyName,
    #[error("device name is {0} bytes long, at most {MAX_NAME_LEN} are allowed")]
    NameTooLong(usize),
    #[error("device name contains control characters")]
    ControlCharacters,
}

impl DeviceInfo {
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
    Initiator,
    Joiner,
}

/// The outcome of a pairing, as each side keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedDevice {
    pub peer: PeerId,
    pub info: DeviceInfo,
    pub role: Role,
    pub keys: SessionKeys,
}

impl PairedDevice {
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
