//! What the sender sends: each path given becomes items named relative to it (a file by
//! its own name, a directory's files under the directory's name). Inside directories only
//! regular files and directories are followed; symlinks and special files are skipped and
//! listed, so nothing outside what was named is ever sent.

use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::TransferError;
use super::wire::FileId;

/// One thing to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub what: What,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A file on disk, the components of the name it is sent under, and its id.
    File {
        path: PathBuf,
        name: Vec<String>,
        id: FileId,
    },
    Text(String),
}

impl Source {
    pub fn text(text: String) -> Self {
        Source {
            size: text.len() as u64,
            what: What::Text(text),
        }
    }

    /// The name shown to the user.
    pub fn shown(&self) -> String {
        match &self.what {
            What::File { name, .. } => name.join("/"),
            What::Text(_) => "text".to_string(),
        }
    }
}

/// The items for `paths` (absolute), and what was skipped inside directories.
pub fn plan(paths: &[PathBuf]) -> Result<(Vec<Source>, Vec<PathBuf>), TransferError> {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        let not_sendable = |why: String| TransferError::NotSendable {
            path: path.clone(),
            why,
        };
        // What was named is followed if it is a symlink: the user chose it.
        let meta = std::fs::metadata(path).map_err(|e| not_sendable(e.to_string()))?;
        let name = component(path).ok_or_else(|| not_sendable("it has no usable name".into()))?;
        if meta.is_file() {
            items.push(Source {
                what: What::File {
                    id: file_id(path, &meta),
                    path: path.clone(),
                    name: vec![name],
                },
                size: meta.len(),
            });
        } else if meta.is_dir() {
            walk(path, &mut vec![name], &mut items, &mut skipped)?;
        } else {
            return Err(not_sendable("it is neither a file nor a directory".into()));
        }
    }
    if items.is_empty() {
        return Err(TransferError::NothingToSend);
    }
    Ok((items, skipped))
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    items: &mut Vec<Source>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), TransferError> {
    let source = |e: std::io::Error| TransferError::Source {
        path: dir.to_path_buf(),
        cause: e.to_string(),
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(source)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(source)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Some(name) = component(&path) else {
            skipped.push(path);
            continue;
        };
        let kind = entry.file_type().map_err(source)?;
        prefix.push(name);
        if kind.is_file() {
            let meta = entry.metadata().map_err(source)?;
            items.push(Source {
                what: What::File {
                    id: file_id(&path, &meta),
                    path,
                    name: prefix.clone(),
                },
                size: meta.len(),
            });
        } else if kind.is_dir() {
            walk(&path, prefix, items, skipped)?;
        } else {
            skipped.push(path);
        }
        prefix.pop();
    }
    Ok(())
}

/// The id a resume is keyed on ([`FileId`]): derived from where the file is and what the
/// file system says of its version (device, inode, size, modification and change times),
/// rather than from its content, so it is known without reading the file, and rather than
/// drawn at random, so the sender keeps no record of what it sent: the same unchanged file
/// sent again, after a crash or a restart of either daemon, has the same id. A write to
/// the file changes its change time (which, unlike the modification time, no one can set
/// back), so a changed file starts afresh; if a change goes unseen (a file system with
/// coarse times), the whole-file SHA-256 after the bytes fails and nothing is kept. The
/// sender computes it again once it has read the file: a file changed meanwhile fails.
pub(super) fn file_id(path: &Path, meta: &std::fs::Metadata) -> FileId {
    let mut h = Sha256::new();
    h.update(b"paircode-send file id\0");
    h.update((path.as_os_str().len() as u64).to_be_bytes());
    h.update(path.as_os_str().as_bytes());
    for n in [meta.dev(), meta.ino(), meta.len()] {
        h.update(n.to_be_bytes());
    }
    for t in [
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ] {
        h.update(t.to_be_bytes());
    }
    let mut id = FileId::default();
    id.copy_from_slice(&h.finalize()[..16]);
    id
}

/// A path's last component, if it is UTF-8 (names travel as text).
fn component(path: &Path) -> Option<String> {
    path.file_name()?.to_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_directories_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024/empty")).unwrap();
        std::fs::write(root.join("b.jpg"), "bb").unwrap();
        std::fs::write(root.join("2024/a.jpg"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let single = dir.path().join("note.txt");
        std::fs::write(&single, "hello").unwrap();

        let (items, skipped) = plan(&[root.clone(), single.clone()]).unwrap();
        let names: Vec<_> = items.iter().map(Source::shown).collect();
        assert_eq!(names, ["photos/2024/a.jpg", "photos/b.jpg", "note.txt"]);
        assert_eq!(items[2].size, 5);
        assert_eq!(skipped, [root.join("link")]);

        // The same file unchanged keeps its id; written to, it gets another.
        let id = |items: &[Source]| match &items[0].what {
            What::File { id, .. } => *id,
            What::Text(_) => unreachable!("a file was planned"),
        };
        let before = id(&plan(std::slice::from_ref(&single)).unwrap().0);
        assert_eq!(id(&plan(std::slice::from_ref(&single)).unwrap().0), before);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&single, "hullo").unwrap();
        assert_ne!(id(&plan(std::slice::from_ref(&single)).unwrap().0), before);

        assert!(matches!(
            plan(&[dir.path().join("missing")]),
            Err(TransferError::NotSendable { .. })
        ));
        assert!(matches!(
            plan(&[root.join("2024/empty")]),
            Err(TransferError::NothingToSend)
        ));
        assert!(matches!(
            plan(&[PathBuf::from("/dev/null")]),
            Err(TransferError::NotSendable { .. })
        ));
    }
}
