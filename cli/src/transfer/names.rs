//! The receiver's defence against the names it is sent: a name is a list of plain
//! components, checked one by one, and a file lands only inside the downloads directory,
//! under a name nothing else has (`a (1).txt` when `a.txt` exists): never over an existing
//! file, never through a symlink, never outside.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::error::Refusal;
use super::partial::PARTIAL_DIR;

pub const MAX_COMPONENTS: usize = 32;
/// What common file systems allow for one name.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// How many numbered alternatives are tried before giving up.
const MAX_NUMBER: u32 = 9999;

/// Checks a received path, component by component. Rejects rather than repairs: a name
/// that needs repair came from a sender that is not paircode's.
pub fn check(path: &[String]) -> Result<(), Refusal> {
    let shown = path.join("/");
    let unsafe_name = |why: &str| Refusal::UnsafeName {
        name: shown.clone(),
        why: why.to_string(),
    };
    if path.is_empty() {
        return Err(unsafe_name("it is empty"));
    }
    if path.len() > MAX_COMPONENTS {
        return Err(unsafe_name("it is nested too deeply"));
    }
    if path[0] == PARTIAL_DIR {
        return Err(unsafe_name("the name is reserved"));
    }
    for c in path {
        if c.is_empty() {
            return Err(unsafe_name("it has an empty component (an absolute path?)"));
        }
        if c == "." || c == ".." {
            return Err(unsafe_name("it has a '.' or '..' component"));
        }
        if c.contains('/') || c.contains('\\') {
            return Err(unsafe_name("a component contains a path separator"));
        }
        if c.chars().any(char::is_control) {
            return Err(unsafe_name("it contains control characters"));
        }
        if c.len() > MAX_COMPONENT_BYTES {
            return Err(unsafe_name("a component is too long"));
        }
    }
    Ok(())
}

/// `n`-th alternative of a name: `a.tar.gz` → `a (n).tar.gz`, `.bashrc` → `.bashrc (n)`.
pub fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    let split = name
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '.')
        .map(|(i, _)| i);
    match split {
        Some(i) => format!("{} ({n}){}", &name[..i], &name[i..]),
        None => format!("{name} ({n})"),
    }
}

/// Where the files of one stream land: a top-level directory sent again gets a numbered
/// name once, and the stream's later files follow it there.
#[derive(Default)]
pub struct Placement {
    top_dirs: HashMap<String, String>,
}

impl Placement {
    /// Moves the verified `temp` file to its final place for `path` (checked already) under
    /// `downloads`; returns the name it got, relative to `downloads`. Never replaces
    /// anything: the final name is linked, which fails if it exists.
    pub fn place(&mut self, downloads: &Path, path: &[String], temp: &Path) -> io::Result<String> {
        let (file, dirs) = path.split_last().expect("checked: not empty");
        let mut dir = downloads.to_path_buf();
        let mut shown = Vec::new();
        if let Some((top, rest)) = dirs.split_first() {
            let top = match self.top_dirs.get(top) {
                Some(chosen) => chosen.clone(),
                None => {
                    let chosen = create_numbered_dir(downloads, top)?;
                    self.top_dirs.insert(top.clone(), chosen.clone());
                    chosen
                }
            };
            dir.push(&top);
            shown.push(top);
            for c in rest {
                dir.push(c);
                shown.push(c.clone());
                enter_dir(&dir)?;
            }
        }
        let name = link_numbered(temp, &dir, file)?;
        std::fs::remove_file(temp)?;
        shown.push(name);
        Ok(shown.join("/"))
    }
}

fn create_numbered_dir(parent: &Path, name: &str) -> io::Result<String> {
    for n in 0..=MAX_NUMBER {
        let candidate = numbered(name, n);
        match std::fs::create_dir(parent.join(&candidate)) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(taken(name))
}

/// A directory inside one this stream created: made if missing, refused if something
/// other than a real directory is there.
fn enter_dir(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(()),
        Ok(_) => Err(io::Error::other(format!(
            "{} exists and is not a directory",
            dir.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(dir),
        Err(e) => Err(e),
    }
}

fn link_numbered(temp: &Path, dir: &Path, name: &str) -> io::Result<String> {
    for n in 0..=MAX_NUMBER {
        let candidate = numbered(name, n);
        match std::fs::hard_link(temp, dir.join(&candidate)) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(taken(name))
}

fn taken(name: &str) -> io::Error {
    io::Error::other(format!(
        "{name:?} and {MAX_NUMBER} numbered alternatives exist"
    ))
}

/// The final path of a placed name.
pub fn resolve(downloads: &Path, name: &str) -> PathBuf {
    name.split('/')
        .fold(downloads.to_path_buf(), |p, c| p.join(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(String::from).collect()
    }

    #[test]
    fn traversal_absolute_and_odd_names_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "/dev/sda",
            "a//b",
            ".",
            "a/./b",
            "a\\..\\b",
            "a\u{0}b",
            "line\nbreak",
            ".paircode-partial/x",
        ] {
            assert!(
                matches!(check(&path(bad)), Err(Refusal::UnsafeName { .. })),
                "{bad:?}"
            );
        }
        assert!(check(&[]).is_err());
        assert!(check(&["x".repeat(256)]).is_err());
        assert!(check(&vec!["d".to_string(); 33]).is_err());
        for good in ["a.txt", "photos/2024/a b.jpg", ".bashrc", "…ünï"] {
            assert_eq!(check(&path(good)), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn numbered_alternatives() {
        assert_eq!(numbered("a.txt", 0), "a.txt");
        assert_eq!(numbered("a.txt", 1), "a (1).txt");
        assert_eq!(numbered("a.tar.gz", 2), "a (2).tar.gz");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered("README", 3), "README (3)");
    }

    #[test]
    fn placing_never_replaces_and_follows_renamed_directories() {
        let dir = tempfile::tempdir().unwrap();
        let downloads = dir.path();
        let temp = |content: &str| {
            let t = downloads.join(format!("t-{content}"));
            std::fs::write(&t, content).unwrap();
            t
        };
        std::fs::write(downloads.join("a.txt"), "old").unwrap();
        std::fs::create_dir(downloads.join("photos")).unwrap();
        let mut placement = Placement::default();
        assert_eq!(
            placement
                .place(downloads, &path("a.txt"), &temp("new"))
                .unwrap(),
            "a (1).txt"
        );
        assert_eq!(
            std::fs::read_to_string(downloads.join("a.txt")).unwrap(),
            "old"
        );
        assert_eq!(
            placement
                .place(downloads, &path("photos/x/1.jpg"), &temp("one"))
                .unwrap(),
            "photos (1)/x/1.jpg"
        );
        assert_eq!(
            placement
                .place(downloads, &path("photos/2.jpg"), &temp("two"))
                .unwrap(),
            "photos (1)/2.jpg"
        );
        // A symlink planted where a directory goes is not followed.
        std::os::unix::fs::symlink("/tmp", downloads.join("photos (1)/link")).unwrap();
        assert!(placement
            .place(downloads, &path("photos/link/evil"), &temp("evil"))
            .is_err());
        assert!(!Path::new("/tmp/evil").exists());
    }
}
