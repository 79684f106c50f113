//! The files the shim shares with its other copies through the `sidecar-kit` emptyDir.
//!
//! Layout (contract, "Shim state"): `/sidecar-kit/state/NAME/state` (one word, this sandbox
//! only), `/sidecar-kit/state/NAME/native-confirmed` (kept for the pod's life) and
//! `/sidecar-kit/tombstones/APP` (an app container's exit code).
//!
//! Every write is atomic: a temporary file in the same directory, fsync, rename. A reader sees
//! the old content or the new one, never a torn write, even while the writer is killed.
//!
//! The copies may run as different users (the install container runs as non-root, the
//! sidecar's copies as whatever its image says), so the shared directories we create are made
//! world-writable (0777, no sticky bit, so that a copy may replace a file another user wrote).
//! The emptyDir is private to the pod: every container in it may read it anyway.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::protocol::{self, State};

/// The per-sandbox state word.
pub const STATE_FILE: &str = "state";
/// The per-pod flag: the native copy has run the sidecar in this pod.
pub const CONFIRMED_FILE: &str = "native-confirmed";

/// What the `state` file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    Missing,
    Known(State),
    /// Not one of the three words (hand-edited, or written by a newer shim): treated as no
    /// state, with a log line.
    Unrecognised(String),
}

impl Recorded {
    pub fn state(&self) -> Option<State> {
        match self {
            Recorded::Known(state) => Some(*state),
            Recorded::Missing | Recorded::Unrecognised(_) => None,
        }
    }
}

pub fn read_state(dir: &Path) -> io::Result<Recorded> {
    match fs::read_to_string(dir.join(STATE_FILE)) {
        Ok(text) => Ok(match State::parse(&text) {
            Some(state) => Recorded::Known(state),
            None => Recorded::Unrecognised(text.trim().chars().take(40).collect()),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Recorded::Missing),
        Err(err) => Err(err),
    }
}

pub fn write_state(dir: &Path, state: State) -> io::Result<()> {
    ensure_shared_dir(dir)?;
    write_atomic(dir, STATE_FILE, format!("{state}\n").as_bytes(), 0o644)
}

pub fn is_confirmed(dir: &Path) -> bool {
    dir.join(CONFIRMED_FILE).exists()
}

pub fn confirm(dir: &Path) -> io::Result<()> {
    ensure_shared_dir(dir)?;
    write_atomic(
        dir,
        CONFIRMED_FILE,
        b"native sidecars run in this pod\n",
        0o644,
    )
}

/// Writes `dir/name` atomically: temporary file in `dir`, fsync, rename, then fsync of the
/// directory (best effort: the emptyDir is usually tmpfs, where it is a no-op).
pub fn write_atomic(dir: &Path, name: &str, content: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(temp_name(name));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(content)?;
        // The mode given to open() is masked by the umask; set it exactly.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    } else if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    result
}

/// The temporary name used while writing `name`: hidden, unique per process.
fn temp_name(name: &str) -> String {
    format!(".{name}.tmp.{}", std::process::id())
}

fn is_temp_of(file_name: &str, name: &str) -> bool {
    file_name
        .strip_prefix('.')
        .and_then(|rest| rest.strip_prefix(name))
        .is_some_and(|rest| {
            rest.strip_prefix(".tmp.")
                .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Creates `path` and any missing parent, each new directory world-writable (see the module
/// docs). Existing directories are left as they are.
pub fn ensure_shared_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        ensure_shared_dir(parent)?;
    }
    match fs::create_dir(path) {
        Ok(()) => {
            let _ = fs::set_permissions(path, Permissions::from_mode(0o777));
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(err) => Err(err),
    }
}

/// What `install` did in one sidecar's state directory.
#[derive(Debug, PartialEq, Eq)]
pub struct Cleared {
    pub sidecar: String,
    /// The `state` word that was removed, if there was one.
    pub removed: Option<String>,
    pub confirmed: bool,
}

/// `install`: removes the per-sandbox `state` of every sidecar under `root` (and temporary
/// files a killed writer left), keeping `native-confirmed` and everything else. A missing
/// root is not an error: nothing ran yet.
pub fn clear_sandbox_state(root: &Path) -> io::Result<Vec<Cleared>> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut cleared = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let dir = entry.path();
        let removed = match fs::read_to_string(dir.join(STATE_FILE)) {
            Ok(text) => {
                fs::remove_file(dir.join(STATE_FILE))?;
                Some(text.trim().to_string())
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        for leftover in fs::read_dir(&dir)? {
            let leftover = leftover?;
            let name = leftover.file_name();
            let name = name.to_string_lossy();
            if is_temp_of(&name, STATE_FILE) || is_temp_of(&name, CONFIRMED_FILE) {
                let _ = fs::remove_file(leftover.path());
            }
        }
        cleared.push(Cleared {
            sidecar: entry.file_name().to_string_lossy().into_owned(),
            removed,
            confirmed: is_confirmed(&dir),
        });
    }
    cleared.sort_by(|a, b| a.sidecar.cmp(&b.sidecar));
    Ok(cleared)
}

/// The result of reading a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tombstone {
    /// No file: the app container has not finished (or never ran in this pod).
    Absent,
    Exited(i32),
    Unreadable(String),
}

pub fn tombstone_path(dir: &Path, app: &str) -> PathBuf {
    dir.join(app)
}

pub fn read_tombstone(dir: &Path, app: &str) -> Tombstone {
    match fs::read_to_string(tombstone_path(dir, app)) {
        Ok(text) => match protocol::parse_tombstone(&text) {
            Some(code) => Tombstone::Exited(code),
            None => Tombstone::Unreadable(format!("not an exit code: {:?}", text.trim())),
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => Tombstone::Absent,
        Err(err) => Tombstone::Unreadable(err.to_string()),
    }
}

pub fn write_tombstone(dir: &Path, app: &str, code: i32) -> io::Result<()> {
    ensure_shared_dir(dir)?;
    write_atomic(dir, app, format!("{code}\n").as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sidecar-shim-state-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn state_round_trip_and_shared_dirs() {
        let root = scratch("roundtrip");
        let dir = root.join("state").join("agent");
        assert_eq!(read_state(&dir).unwrap(), Recorded::Missing);
        write_state(&dir, State::NativePending).unwrap();
        assert_eq!(
            read_state(&dir).unwrap(),
            Recorded::Known(State::NativePending)
        );
        write_state(&dir, State::NativeRunning).unwrap();
        assert_eq!(
            read_state(&dir).unwrap(),
            Recorded::Known(State::NativeRunning)
        );
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o777);
        let file_mode = fs::metadata(dir.join(STATE_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(file_mode, 0o644);
        // Only the final file is left.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [STATE_FILE]);
        fs::write(dir.join(STATE_FILE), "garbage\n").unwrap();
        assert_eq!(
            read_state(&dir).unwrap(),
            Recorded::Unrecognised("garbage".into())
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn clearing_keeps_the_confirmed_flag_and_removes_leftovers() {
        let root = scratch("clear");
        let agent = root.join("agent");
        let other = root.join("other");
        write_state(&agent, State::NativeRunning).unwrap();
        confirm(&agent).unwrap();
        write_state(&other, State::LegacyRunning).unwrap();
        fs::write(agent.join(".state.tmp.12345"), "native-run").unwrap();
        fs::write(root.join("stray-file"), "x").unwrap();
        let cleared = clear_sandbox_state(&root).unwrap();
        assert_eq!(
            cleared,
            [
                Cleared {
                    sidecar: "agent".into(),
                    removed: Some("native-running".into()),
                    confirmed: true
                },
                Cleared {
                    sidecar: "other".into(),
                    removed: Some("legacy-running".into()),
                    confirmed: false
                },
            ]
        );
        assert_eq!(read_state(&agent).unwrap(), Recorded::Missing);
        assert!(is_confirmed(&agent));
        assert!(!agent.join(".state.tmp.12345").exists());
        assert!(root.join("stray-file").exists());
        assert_eq!(clear_sandbox_state(&root.join("missing")).unwrap(), []);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_of(".state.tmp.42", "state"));
        assert!(!is_temp_of(".state.tmp.x", "state"));
        assert!(!is_temp_of("state", "state"));
        assert!(!is_temp_of(".native-confirmed.tmp.1", "state"));
    }

    #[test]
    fn tombstones() {
        let dir = scratch("tombstones");
        assert_eq!(read_tombstone(&dir, "app"), Tombstone::Absent);
        write_tombstone(&dir, "app", 3).unwrap();
        assert_eq!(fs::read_to_string(dir.join("app")).unwrap(), "3\n");
        assert_eq!(read_tombstone(&dir, "app"), Tombstone::Exited(3));
        fs::write(dir.join("bad"), "x").unwrap();
        assert!(matches!(
            read_tombstone(&dir, "bad"),
            Tombstone::Unreadable(_)
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
