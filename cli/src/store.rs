//! Encrypted files at rest: Argon2id turns the password into a key, ChaCha20-Poly1305 seals
//! each file, and every write is atomic (temp file, fsync, rename, fsync of the directory).
//!
//! A key-check value next to the ciphertext tells "wrong password" apart from "this file is
//! damaged", so a typo never looks like corruption and corruption is never papered over.
//! Files are created 0600 in a 0700 directory; nothing is ever silently replaced.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"PAIRCODE";
const FORMAT: u8 = 1;
const SALT_LEN: usize = 16;
const CHECK_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 8 + 1 + 4 * 3 + SALT_LEN + CHECK_LEN + NONCE_LEN;
/// Store files are small; anything bigger is not ours.
const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// Argon2id cost. The defaults follow OWASP's recommendation (19 MiB, 2 passes), which keeps
/// the daemon's start quick and its memory small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 19 * 1024,
            passes: 2,
            lanes: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wrong password for {}", .path.display())]
    WrongPassword { path: PathBuf },
    #[error("{} is corrupt ({why}); it was left untouched", .path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the password is empty")]
    EmptyPassword,
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A key derived from the password, with the salt and cost it was derived with.
pub struct StoreKey {
    key: Zeroizing<[u8; 32]>,
    salt: [u8; SALT_LEN],
    params: KdfParams,
}

impl StoreKey {
    /// A fresh salt: for a store being created.
    pub fn create(password: &[u8], params: KdfParams) -> Result<Self, StoreError> {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        Self::derive(password, salt, params)
    }

    fn derive(
        password: &[u8],
        salt: [u8; SALT_LEN],
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        if password.is_empty() {
            return Err(StoreError::EmptyPassword);
        }
        let argon_params = Params::new(params.memory_kib, params.passes, params.lanes, Some(32))
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut key = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, &salt, key.as_mut())
            .map_err(|e| StoreError::Kdf(e.to_string()))?;
        Ok(StoreKey { key, salt, params })
    }

    fn check_value(&self) -> [u8; CHECK_LEN] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()).expect("any key length");
        mac.update(b"paircode store key check");
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.key.as_ref()))
    }
}

struct Header {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    check: [u8; CHECK_LEN],
    nonce: [u8; NONCE_LEN],
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if bytes.len() < HEADER_LEN + 16 {
        return Err(corrupt("truncated"));
    }
    if &bytes[..8] != MAGIC {
        return Err(corrupt("not a paircode store file"));
    }
    if bytes[8] != FORMAT {
        return Err(corrupt(&format!("unknown format version {}", bytes[8])));
    }
    let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let params = KdfParams {
        memory_kib: u32_at(9),
        passes: u32_at(13),
        lanes: u32_at(17),
    };
    // Refuse absurd costs: a damaged header must not make us allocate gigabytes.
    if params.memory_kib > 1024 * 1024
        || params.passes > 64
        || params.lanes > 16
        || params.lanes == 0
    {
        return Err(corrupt("implausible key derivation parameters"));
    }
    let mut at = 21;
    let mut take = |n: usize| {
        let out = &bytes[at..at + n];
        at += n;
        out
    };
    Ok(Header {
        params,
        salt: take(SALT_LEN).try_into().expect("salt length"),
        check: take(CHECK_LEN).try_into().expect("check length"),
        nonce: take(NONCE_LEN).try_into().expect("nonce length"),
    })
}

/// A directory of encrypted files sharing one password.
pub struct Vault {
    dir: PathBuf,
    key: StoreKey,
}

impl Vault {
    /// Creates the directory (0700) if needed and derives a fresh key.
    pub fn create(dir: &Path, password: &[u8], params: KdfParams) -> Result<Self, StoreError> {
        create_private_dir(dir)?;
        Ok(Vault {
            dir: dir.to_path_buf(),
            key: StoreKey::create(password, params)?,
        })
    }

    /// Opens a store whose `anchor` file exists: its header gives the salt, its key check
    /// tells whether the password is right.
    pub fn open(dir: &Path, anchor: &str, password: &[u8]) -> Result<Self, StoreError> {
        let path = dir.join(anchor);
        let bytes = read_limited(&path)?;
        let header = parse_header(&path, &bytes)?;
        let key = StoreKey::derive(password, header.salt, header.params)?;
        if !bool::from(key.check_value().ct_eq(&header.check)) {
            return Err(StoreError::WrongPassword { path });
        }
        Ok(Vault {
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn exists(&self, name: &str) -> bool {
        self.dir.join(name).exists()
    }

    /// Reads and decrypts `name`. `Ok(None)` if the file does not exist.
    pub fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StoreError> {
        let path = self.dir.join(name);
        if !path.exists() {
            return Ok(None);
        }
        let bytes = read_limited(&path)?;
        let header = parse_header(&path, &bytes)?;
        let corrupt = |why: &str| StoreError::Corrupt {
            path: path.clone(),
            why: why.to_string(),
        };
        if header.salt != self.key.salt || header.params != self.key.params {
            // Every file of a store is sealed under the store's one salt: a file with another
            // salt was copied in from elsewhere.
            return Err(corrupt(
                "it was sealed with a different key than this store's",
            ));
        }
        if !bool::from(self.key.check_value().ct_eq(&header.check)) {
            return Err(StoreError::WrongPassword { path });
        }
        let plain = Zeroizing::new(
            self.key
                .cipher()
                .decrypt(
                    Nonce::from_slice(&header.nonce),
                    Payload {
                        msg: &bytes[HEADER_LEN..],
                        aad: &bytes[..HEADER_LEN],
                    },
                )
                .map_err(|_| {
                    corrupt("authentication failed: the contents were altered or damaged")
                })?,
        );
        let value = ciborium::from_reader(plain.as_slice())
            .map_err(|e| corrupt(&format!("undecodable contents: {e}")))?;
        Ok(Some(value))
    }

    /// Encrypts `value` into `name`, atomically: either the old file or the new one exists,
    /// never a mix, even across a crash.
    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.dir.join(name);
        let mut plain = Zeroizing::new(Vec::new());
        ciborium::into_writer(value, &mut *plain).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            why: format!("cannot encode: {e}"),
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + 16);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        for v in [
            self.key.params.memory_kib,
            self.key.params.passes,
            self.key.params.lanes,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.key.salt);
        out.extend_from_slice(&self.key.check_value());
        out.extend_from_slice(&nonce);
        let sealed = self
            .key
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &out,
                },
            )
            .expect("encryption of an in-memory buffer cannot fail");
        out.extend_from_slice(&sealed);
        write_atomic(&path, &out)
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, StoreError> {
    let len = fs::metadata(path).map_err(io_error(path))?.len();
    if len > MAX_FILE_LEN {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            why: format!("{len} bytes is far larger than any store file"),
        });
    }
    fs::read(path).map_err(io_error(path))
}

pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_error(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))
}

/// Temp file (0600) in the same directory, fsync, rename over the target, fsync the
/// directory so the rename itself survives a power cut.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_error(&tmp))?;
        file.write_all(bytes).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
        fs::rename(&tmp, path).map_err(io_error(path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Cheap parameters: the tests exercise the format, not Argon2's cost.
    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
        secret: Vec<u8>,
    }

    fn thing() -> Thing {
        Thing {
            name: "laptop".into(),
            secret: vec![7; 32],
        }
    }

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("alice");
        let vault = Vault::create(&store, b"hunter2", FAST).unwrap();
        vault.write("identity", &thing()).unwrap();
        let mode = fs::metadata(store.join("identity"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&store).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let again = Vault::open(&store, "identity", b"hunter2").unwrap();
        assert_eq!(again.read::<Thing>("identity").unwrap(), Some(thing()));
        assert_eq!(again.read::<Thing>("missing").unwrap(), None);
        // Nothing readable at rest.
        let raw = fs::read(store.join("identity")).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"laptop"));
    }

    #[test]
    fn wrong_password_is_not_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::create(dir.path(), b"right", FAST).unwrap();
        vault.write("identity", &thing()).unwrap();
        assert!(matches!(
            Vault::open(dir.path(), "identity", b"wrong"),
            Err(StoreError::WrongPassword { .. })
        ));
        assert!(matches!(
            Vault::open(dir.path(), "identity", b""),
            Err(StoreError::EmptyPassword)
        ));
    }

    #[test]
    fn damage_is_reported_with_the_file_name_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::create(dir.path(), b"pw", FAST).unwrap();
        vault.write("devices", &thing()).unwrap();
        let path = dir.path().join("devices");
        let original = fs::read(&path).unwrap();

        let mut flipped = original.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        fs::write(&path, &flipped).unwrap();
        let err = vault.read::<Thing>("devices").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("devices"));
        assert_eq!(fs::read(&path).unwrap(), flipped, "never replaced");

        fs::write(&path, &original[..original.len() / 2]).unwrap();
        assert!(matches!(
            vault.read::<Thing>("devices"),
            Err(StoreError::Corrupt { .. })
        ));
        fs::write(&path, b"").unwrap();
        assert!(matches!(
            vault.read::<Thing>("devices"),
            Err(StoreError::Corrupt { .. })
        ));
        fs::write(
            &path,
            b"something else entirely, long enough to pass the length check.....",
        )
        .unwrap();
        assert!(matches!(
            vault.read::<Thing>("devices"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn atomic_write_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::create(dir.path(), b"pw", FAST).unwrap();
        for i in 0..3u8 {
            vault.write("devices", &vec![i; 10]).unwrap();
        }
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("devices")]);
        assert_eq!(vault.read::<Vec<u8>>("devices").unwrap(), Some(vec![2; 10]));
    }

    #[test]
    fn default_cost_derives() {
        // The real parameters must be accepted by argon2 (the tests above use cheap ones).
        assert!(StoreKey::create(b"pw", KdfParams::default()).is_ok());
    }
}
