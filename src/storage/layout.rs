//! The embedded store's place in the data folder. Earlier versions made the default store
//! `fs://<data>/blobs`, and since object keys start with `blobs/` the bytes landed in
//! `<data>/blobs/blobs/sha256`. The default store is now the data folder itself
//! (`<data>/blobs/sha256`, `<data>/uploads`); a folder in the earlier layout is moved up
//! when the server or `gc` opens it.

use std::io;
use std::path::Path;

/// Moves an earlier layout's folders to where the current one expects them. Renames only, so
/// it takes no time whatever the size; a move cut short (a crash) is finished by the next
/// start, because entries present on both sides are merged one by one. Answers whether
/// anything moved.
pub fn adopt_earlier_layout(data_dir: &Path) -> io::Result<bool> {
    let old_root = data_dir.join("blobs");
    let mut moved = false;
    for (from, to) in [
        (old_root.join("blobs/sha256"), data_dir.join("blobs/sha256")),
        (old_root.join("uploads"), data_dir.join("uploads")),
    ] {
        if from.exists() {
            merge(&from, &to)?;
            moved = true;
        }
    }
    if moved {
        // Unfinished writes of a process that is no longer running; nothing refers to them.
        remove_if_present(&old_root.join(".staging"))?;
        remove_if_present(&old_root.join("blobs"))?;
    }
    Ok(moved)
}

/// Moves `from` to `to`; where `to` exists already, moves `from`'s entries into it. A file
/// present on both sides is the same object (keys are digests and generation ids), so the
/// one at `to` stays.
fn merge(from: &Path, to: &Path) -> io::Result<()> {
    if !to.exists() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        return std::fs::rename(from, to);
    }
    if from.is_dir() && to.is_dir() {
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            merge(&entry.path(), &to.join(entry.file_name()))?;
        }
        std::fs::remove_dir(from)
    } else {
        std::fs::remove_file(from)
    }
}

fn remove_if_present(dir: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_move_is_finished_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let write = |path: &str| {
            let path = data.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        };
        write("blobs/blobs/sha256/ab/ab01");
        write("blobs/blobs/sha256/cd/cd01");
        write("blobs/uploads/s1/chunks/000000-g");
        write("blobs/.staging/leftover");
        // A first run that moved one shard before it was cut short.
        write("blobs/sha256/ab/ab01");
        write("registry.db");

        assert!(adopt_earlier_layout(data).unwrap());
        for present in [
            "blobs/sha256/ab/ab01",
            "blobs/sha256/cd/cd01",
            "uploads/s1/chunks/000000-g",
            "registry.db",
        ] {
            assert!(data.join(present).is_file(), "{present}");
        }
        for gone in ["blobs/blobs", "blobs/uploads", "blobs/.staging"] {
            assert!(!data.join(gone).exists(), "{gone}");
        }
        assert!(
            !adopt_earlier_layout(data).unwrap(),
            "a second run has nothing to do"
        );
    }
}
