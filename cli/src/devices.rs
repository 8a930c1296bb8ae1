//! What an instance persists: its identity and the devices it paired with.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use paircode_core::{DeviceIdentity, PairedDevice, PeerId, Role};

use crate::instance::{DEVICES_FILE, IDENTITY_FILE};
use crate::ipc::DeviceView;
use crate::store::{StoreError, Vault};

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct IdentityRecord {
    #[serde(with = "serde_bytes")]
    secret: [u8; 32],
    #[zeroize(skip)]
    pub created_at: u64,
    /// The name other devices see, chosen at `init` or by `rename`. Stores made before
    /// names were kept have none: the daemon then uses the host name.
    #[zeroize(skip)]
    #[serde(default)]
    pub name: Option<String>,
    /// The newest generation of the device list this store saved. It lives here because a
    /// rollback of the device list alone cannot undo it: whoever can copy files can bring
    /// back an old list, but not this number with it without also bringing back this file
    /// as it was then (which is restoring the whole store from a backup: that cannot be
    /// told from here, and loses nothing the backup did not have). 0 in stores from before
    /// the list had generations.
    #[zeroize(skip)]
    #[serde(default)]
    pub devices_generation: u64,
}

impl IdentityRecord {
    pub fn new(identity: &DeviceIdentity, created_at: u64, name: String) -> Self {
        IdentityRecord {
            secret: *identity.secret_bytes(),
            created_at,
            name: Some(name),
            devices_generation: 0,
        }
    }

    pub fn identity(&self) -> DeviceIdentity {
        DeviceIdentity::from_secret(self.secret)
    }
}

#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct DeviceRecord {
    #[zeroize(skip)]
    #[serde(with = "serde_bytes")]
    pub peer_id: Vec<u8>,
    #[zeroize(skip)]
    pub name: String,
    #[zeroize(skip)]
    pub paired_at: u64,
    #[zeroize(skip)]
    pub last_seen: Option<u64>,
    /// Which side this device played: `true` if we generated the code.
    #[zeroize(skip)]
    pub we_initiated: bool,
    /// Transfers from it are accepted (`network receive DEVICE on|off`).
    #[zeroize(skip)]
    #[serde(default = "yes")]
    pub receive: bool,
    #[serde(with = "serde_bytes")]
    pairing_secret: [u8; 32],
}

/// Serde's default for switches that start on.
pub fn yes() -> bool {
    true
}

impl DeviceRecord {
    pub fn from_pairing(device: &PairedDevice, paired_at: u64) -> Self {
        DeviceRecord {
            peer_id: device.peer.as_bytes().to_vec(),
            name: device.info.name.clone(),
            paired_at,
            last_seen: Some(paired_at),
            we_initiated: device.role == Role::Initiator,
            receive: true,
            pairing_secret: *device.pairing_secret(),
        }
    }

    pub fn peer(&self) -> Option<PeerId> {
        PeerId::from_bytes(&self.peer_id).ok()
    }

    /// Whether this record is of `device`'s pairing: the same peer and the same secret
    /// (a peer paired again has a new one).
    pub fn is_of(&self, device: &PairedDevice) -> bool {
        self.peer_id == device.peer.as_bytes() && self.pairing_secret == *device.pairing_secret()
    }

    /// The secret this device and `me` meet under across networks
    /// (`Node::set_rendezvous`): an exporter key, so the pairing secret itself stays here.
    pub fn rendezvous_secret(&self, me: &PeerId) -> Option<(PeerId, [u8; 32])> {
        let peer = self.peer()?;
        let label = paircode_net::RENDEZVOUS_LABEL;
        let secret = paircode_core::export_key(&self.pairing_secret, me, &peer, label);
        Some((peer, secret))
    }

    pub fn peer_string(&self) -> String {
        self.peer().map(|p| p.to_string()).unwrap_or_default()
    }

    pub fn view(&self, online: bool) -> DeviceView {
        DeviceView {
            name: self.name.clone(),
            peer_id: self.peer_string(),
            paired_at: self.paired_at,
            online,
            last_seen: self.last_seen,
            // Filled in by `meeting_points::with_paths` where the node is at hand.
            connection: None,
            receive: self.receive,
        }
    }
}

/// The paired-device list, persisted whole on every change (it is small).
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceRecord>,
    /// Peer ids of devices we unpaired that have not been told yet.
    #[serde(default)]
    pub unpair_pending: Vec<serde_bytes::ByteBuf>,
}

impl DeviceList {
    /// The list is written before the identity at `init`, so once the identity exists a
    /// missing list is a lost file, never an empty one. A list older than the newest one
    /// this store saved (a copy put back) is refused: it would silently bring back devices
    /// that were unpaired since.
    pub fn load(vault: &Vault) -> Result<Self, StoreError> {
        let path = vault.dir().join(DEVICES_FILE);
        let (list, found) = vault
            .read_generation(DEVICES_FILE)?
            .ok_or_else(|| StoreError::Missing { path: path.clone() })?;
        let newest = load_identity(vault)?.map_or(0, |id| id.devices_generation);
        if found < newest {
            return Err(StoreError::RolledBack {
                path,
                found,
                newest,
            });
        }
        Ok(list)
    }

    /// Saves the list as its next generation ([`save_list`](Self::save_list)), then
    /// records that generation in the identity file ([`record_generation`]).
    pub fn save(&self, vault: &Vault) -> Result<(), StoreError> {
        let generation = self.save_list(vault)?;
        record_generation(vault, generation);
        Ok(())
    }

    /// Saves the list durably as its next generation, one fsync chain: written and
    /// fsynced under a temporary name, renamed into place, the directory fsynced. The
    /// generation is not recorded yet: a pairing waits for this alone, on both devices one
    /// after the other, and its caller records the generation with [`record_generation`]
    /// once nobody waits (two more flushes off that path).
    pub fn save_list(&self, vault: &Vault) -> Result<u64, StoreError> {
        let list = vault.stage(DEVICES_FILE, self)?;
        let generation = list.generation();
        list.commit()?;
        vault.sync_dir()?;
        Ok(generation)
    }

    /// A re-pairing with a known peer replaces its record: the new secret wins.
    pub fn upsert(&mut self, record: DeviceRecord) {
        self.devices.retain(|d| d.peer_id != record.peer_id);
        self.devices.push(record);
    }

    /// By exact peer id, or by name when exactly one device has it.
    pub fn find(&self, who: &str) -> Result<&DeviceRecord, FindError> {
        if let Some(d) = self.devices.iter().find(|d| d.peer_string() == who) {
            return Ok(d);
        }
        let named: Vec<&DeviceRecord> = self.devices.iter().filter(|d| d.name == who).collect();
        match named.as_slice() {
            [one] => Ok(one),
            [] => Err(FindError::Unknown(who.to_string())),
            _ => Err(FindError::Ambiguous(who.to_string(), named.len())),
        }
    }

    pub fn remove(&mut self, peer_id: &[u8]) -> Option<DeviceRecord> {
        let index = self.devices.iter().position(|d| d.peer_id == peer_id)?;
        Some(self.devices.remove(index))
    }

    pub fn pending_unpairs(&self) -> Vec<PeerId> {
        self.unpair_pending
            .iter()
            .filter_map(|b| PeerId::from_bytes(b).ok())
            .collect()
    }

    pub fn peers(&self) -> Vec<PeerId> {
        self.devices.iter().filter_map(DeviceRecord::peer).collect()
    }

    pub fn get_mut(&mut self, peer: &PeerId) -> Option<&mut DeviceRecord> {
        self.devices
            .iter_mut()
            .find(|d| d.peer_id == peer.as_bytes())
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindError {
    #[error("no paired device is called or has the peer id {0:?}; `paircode network devices` lists them")]
    Unknown(String),
    #[error("{1} paired devices are called {0:?}: name one by its peer id")]
    Ambiguous(String, usize),
}

/// The name a device gets when none was chosen: the host's, if it is a valid name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|s| device_name(s.trim()).ok())
        .unwrap_or_else(|| "paircode device".to_string())
}

/// A name other devices can be shown, checked as the core checks it.
pub fn device_name(value: &str) -> Result<String, paircode_core::device::DeviceInfoError> {
    paircode_core::DeviceInfo::new(value).map(|info| info.name)
}

/// Records that the device list reached `generation` in the identity file (the rollback
/// check of [`DeviceList::load`]), unless it already records this one or a newer one. Always after
/// the list is durable: a crash before or during this leaves the list newer than its
/// record, which loads, never older. Failing is logged and not an error: the list is
/// saved, and only the check against a rollback to the generations just before is weaker
/// until the next save records a newer one.
pub fn record_generation(vault: &Vault, generation: u64) {
    let recorded = load_identity(vault).and_then(|identity| match identity {
        // At `init` the list is written first, and the identity records none yet.
        None => Ok(()),
        Some(mut identity) if identity.devices_generation < generation => {
            identity.devices_generation = generation;
            vault.stage(IDENTITY_FILE, &identity)?.commit()?;
            vault.sync_dir()
        }
        Some(_) => Ok(()),
    });
    if let Err(e) = recorded {
        tracing::warn!("recording the device list's generation {generation}: {e}");
    }
}

pub fn load_identity(vault: &Vault) -> Result<Option<IdentityRecord>, StoreError> {
    vault.read(IDENTITY_FILE)
}

pub fn save_identity(vault: &Vault, record: &IdentityRecord) -> Result<(), StoreError> {
    vault.write(IDENTITY_FILE, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u8, name: &str) -> DeviceRecord {
        DeviceRecord {
            peer_id: vec![id],
            name: name.into(),
            paired_at: 1,
            last_seen: None,
            we_initiated: true,
            receive: true,
            pairing_secret: [id; 32],
        }
    }

    /// Cheap key derivation: these tests are about the files, not Argon2's cost.
    const FAST: crate::store::KdfParams = crate::store::KdfParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    /// A store as `init` leaves it: an empty list, then the identity.
    fn store(dir: &std::path::Path) -> Vault {
        let vault = Vault::create(dir, b"pw", FAST).unwrap();
        DeviceList::default().save(&vault).unwrap();
        let identity = DeviceIdentity::from_secret([9; 32]);
        save_identity(&vault, &IdentityRecord::new(&identity, 1, "me".into())).unwrap();
        vault
    }

    fn recorded(vault: &Vault) -> u64 {
        load_identity(vault).unwrap().unwrap().devices_generation
    }

    fn names_in(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_save_records_the_lists_generation_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let vault = store(dir.path());
        let mut list = DeviceList::default();
        list.upsert(record(1, "phone"));
        list.save(&vault).unwrap();
        list.save(&vault).unwrap();
        assert_eq!(vault.generation(DEVICES_FILE), Some(3));
        assert_eq!(recorded(&vault), 3);
        assert_eq!(names_in(dir.path()), vec![DEVICES_FILE, IDENTITY_FILE]);
        let again = Vault::open(dir.path(), IDENTITY_FILE, b"pw").unwrap();
        assert_eq!(DeviceList::load(&again).unwrap().devices.len(), 1);
    }

    /// The crash point between the two renames of a save: the list is renamed into place,
    /// its generation's record is not. The list is then newer than the record, which must
    /// load (with the new device), and the next save records the newest generation again.
    #[test]
    fn a_crash_between_the_lists_rename_and_the_records_loads_the_new_list() {
        let dir = tempfile::tempdir().unwrap();
        let vault = store(dir.path());
        let mut list = DeviceList::default();
        list.upsert(record(1, "phone"));
        list.save(&vault).unwrap();
        assert_eq!(recorded(&vault), 2);

        list.upsert(record(2, "laptop"));
        let staged_list = vault.stage(DEVICES_FILE, &list).unwrap();
        let mut identity = load_identity(&vault).unwrap().unwrap();
        identity.devices_generation = staged_list.generation();
        let staged_record = vault.stage(IDENTITY_FILE, &identity).unwrap();
        staged_list.commit().unwrap();
        vault.sync_dir().unwrap();
        // The crash: the record's temporary file is never renamed. (A real crash leaves it
        // behind; dropping it here removes it, which loading never looks at either way.)
        drop(staged_record);

        let after = Vault::open(dir.path(), IDENTITY_FILE, b"pw").unwrap();
        let loaded = DeviceList::load(&after).unwrap();
        assert_eq!(
            loaded.devices.len(),
            2,
            "the list as renamed, newer than the record"
        );
        assert_eq!(recorded(&after), 2);
        loaded.save(&after).unwrap();
        assert_eq!(recorded(&after), 4);
        assert_eq!(after.generation(DEVICES_FILE), Some(4));
    }

    /// A pairing's save: the list alone first (what the pairing waits for), which loads
    /// while its record lags; the record catches up afterwards, never backwards.
    #[test]
    fn the_list_saved_alone_loads_and_its_record_follows() {
        let dir = tempfile::tempdir().unwrap();
        let vault = store(dir.path());
        let mut list = DeviceList::default();
        list.upsert(record(1, "phone"));
        let generation = list.save_list(&vault).unwrap();
        assert_eq!(generation, 2);
        assert_eq!(recorded(&vault), 0, "not recorded yet");
        let again = Vault::open(dir.path(), IDENTITY_FILE, b"pw").unwrap();
        assert_eq!(DeviceList::load(&again).unwrap().devices.len(), 1);
        record_generation(&vault, generation);
        assert_eq!(recorded(&vault), 2);
        record_generation(&vault, 1);
        assert_eq!(recorded(&vault), 2);
        assert_eq!(names_in(dir.path()), vec![DEVICES_FILE, IDENTITY_FILE]);
    }

    /// The other order, which a save never leaves: a record newer than the list is a list
    /// rolled back.
    #[test]
    fn a_record_newer_than_the_list_is_a_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let vault = store(dir.path());
        let path = dir.path().join(DEVICES_FILE);
        let old = std::fs::read(&path).unwrap();
        DeviceList::default().save(&vault).unwrap();
        std::fs::write(&path, old).unwrap();
        let after = Vault::open(dir.path(), IDENTITY_FILE, b"pw").unwrap();
        assert!(matches!(
            DeviceList::load(&after),
            Err(StoreError::RolledBack {
                found: 1,
                newest: 2,
                ..
            })
        ));
    }

    #[test]
    fn find_by_peer_or_unique_name() {
        let mut list = DeviceList::default();
        list.upsert(record(1, "phone"));
        list.upsert(record(2, "laptop"));
        list.upsert(record(3, "laptop"));
        assert_eq!(list.find("phone").unwrap().peer_id, vec![1]);
        assert_eq!(list.find("01").unwrap().peer_id, vec![1]);
        assert_eq!(
            list.find("laptop").err(),
            Some(FindError::Ambiguous("laptop".into(), 2))
        );
        assert_eq!(list.find("tv").err(), Some(FindError::Unknown("tv".into())));
        list.upsert(record(1, "phone renamed"));
        assert_eq!(list.devices.len(), 3);
        assert!(list.remove(&[1]).is_some());
        assert!(list.remove(&[1]).is_none());
    }
}
