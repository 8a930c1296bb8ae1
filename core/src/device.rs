//! What a device says about itself during pairing, and what is kept about a paired device.

use serde::{Deserialize, Serialize};

use crate::identity::PeerId;
use crate::keys::{SessionKeys, KEY_LEN};

pub use crate::name::{DeviceInfoError, MAX_NAME_LEN};

/// Self-description exchanged in the handshake (`info_j`, `info_i`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// A short, printable name the other user recognises ("Alice's laptop"); see
    /// [`crate::name`] for what a name may contain.
    pub name: String,
}

impl DeviceInfo {
    /// A device called `name`, if the name is acceptable (see [`validate`](Self::validate)).
    pub fn new(name: impl Into<String>) -> Result<Self, DeviceInfoError> {
        let info = DeviceInfo { name: name.into() };
        info.validate()?;
        Ok(info)
    }

    /// Names come from other devices and end up in terminals: see [`crate::name`].
    pub fn validate(&self) -> Result<(), DeviceInfoError> {
        crate::name::validate(&self.name)
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
