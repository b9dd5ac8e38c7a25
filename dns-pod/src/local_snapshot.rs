//! The local snapshot: the latest served version of each zone in a directory (an
//! emptyDir), so a restarted pod serves at once, even while NATS is unreachable.
//!
//! One file per zone, `<apex>zfw` (e.g. `example.com.zfw`), in the distribution's snapshot
//! format. Files are written to a temporary name and renamed, so a crash never leaves a
//! half-written file under the real name; a file that does not decode, or whose records
//! do not match its digest, is discarded with a log line.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use hickory_proto::rr::Name;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::zones::ServedZone;

const EXTENSION: &str = "zfw";

/// The file of a zone.
fn file_of(dir: &Path, origin: &str) -> PathBuf {
    let mut name = origin.to_ascii_lowercase().replace('/', "%2F");
    if name == "." {
        name = "root.".into();
    }
    dir.join(format!("{name}{EXTENSION}"))
}

/// Loads and indexes every valid snapshot in `dir` (each checked against its digest);
/// discards (deletes) the invalid ones.
pub fn load(dir: &Path) -> Vec<ServedZone> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut zones = Vec::new();
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|ext| ext != EXTENSION) {
            continue;
        }
        let loaded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| ServedZone::from_encoded(&bytes).map_err(|e| e.to_string()));
        match loaded {
            Ok(zone) => zones.push(zone),
            Err(reason) => {
                warn!(path = %path.display(), reason, "discarding a corrupt local snapshot");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    zones
}

/// A change to the local copy.
enum Change {
    /// Write the zone's version: its apex and the encoded snapshot.
    Save(String, Vec<u8>),
    /// Delete the zone's file.
    Remove(String),
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Save(origin, bytes) => write!(f, "save {origin} ({} bytes)", bytes.len()),
            Self::Remove(origin) => write!(f, "remove {origin}"),
        }
    }
}

/// Writes changes in order, off the serving path.
#[derive(Clone, Debug)]
pub struct LocalSnapshot {
    changes: mpsc::UnboundedSender<Change>,
}

impl LocalSnapshot {
    /// Starts the writer for `dir` (created if missing).
    pub fn start(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let (changes, mut queue) = mpsc::unbounded_channel::<Change>();
        tokio::task::spawn_blocking(move || {
            while let Some(change) = queue.blocking_recv() {
                let result = match &change {
                    Change::Save(origin, bytes) => save(&dir, origin, bytes),
                    Change::Remove(origin) => match std::fs::remove_file(file_of(&dir, origin)) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                        _ => Ok(()),
                    },
                };
                match result {
                    Ok(()) => debug!(?change, "local snapshot updated"),
                    Err(error) => warn!(%error, "cannot update the local snapshot"),
                }
            }
        });
        Ok(Self { changes })
    }

    /// Saves a zone's version, given as its encoded snapshot: the bytes, not a copy of the
    /// records (a quarter of the memory, and a full snapshot is saved as it arrived).
    pub fn save(&self, origin: &Name, encoded: Vec<u8>) {
        let _ = self.changes.send(Change::Save(origin.to_string(), encoded));
    }

    /// Deletes a zone.
    pub fn remove(&self, origin: &str) {
        let _ = self.changes.send(Change::Remove(origin.to_owned()));
    }
}

fn save(dir: &Path, origin: &str, bytes: &[u8]) -> std::io::Result<()> {
    let path = file_of(dir, origin);
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    std::fs::rename(&temporary, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        let dir = Path::new("/d");
        assert_eq!(
            file_of(dir, "Example.com."),
            Path::new("/d/example.com.zfw")
        );
        assert_eq!(file_of(dir, "."), Path::new("/d/root.zfw"));
        assert_eq!(file_of(dir, "a/b.c."), Path::new("/d/a%2Fb.c.zfw"));
    }
}
