//! Files and directories of the on-disk stores (feature `file-store`): one name per app
//! id, owner-only permissions, the check that refuses a directory other users can write,
//! and setting corrupt data aside.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::StoreError;

/// `app_id` with each byte outside `[A-Za-z0-9-]` as `_XX`: injective, and a safe
/// file name on every platform.
pub(crate) fn encode_app_id(app_id: &str) -> String {
    let mut out = String::with_capacity(app_id.len());
    for b in app_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// A store error for an I/O failure while doing `what`.
pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let what = what.into();
    move |e| StoreError::with_source(what, e)
}

/// Check the store directory `dir`: `Ok(false)` when it does not exist (yet, or cannot:
/// a parent is a file; creating it will fail), `Ok(true)` when it is a directory that only
/// its owner (and the superuser) can write. A directory that other users can write is
/// refused: anyone could plant or swap a store file there.
pub(crate) fn check_dir(dir: &Path) -> Result<bool, StoreError> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(false);
        }
        Err(e) => {
            return Err(StoreError::with_source(
                format!("cannot inspect the user store directory {}", dir.display()),
                e,
            ));
        }
    };
    if !meta.is_dir() {
        return Err(StoreError::new(format!(
            "the user store directory {} is not a directory",
            dir.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            return Err(StoreError::new(format!(
                "refusing the user store directory {}: other users can write to it \
                 (mode {:o}); run `chmod o-w` on it or choose a private directory",
                dir.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(true)
}

/// Create `dir` (and its missing parents) with owner-only permissions, then check it.
pub(crate) fn create_dir(dir: &Path) -> Result<(), StoreError> {
    if check_dir(dir)? {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io_error(format!(
        "cannot create the user store directory {}",
        dir.display()
    )))?;
    check_dir(dir).map(drop)
}

/// Create `path`, which must not exist, readable and writable by its owner only.
pub(crate) fn create_private(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Make `path` readable and writable by its owner only (a no-op elsewhere than unix).
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o777 != 0o600 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Make the directory entries of `dir` durable (renames, creations, removals).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Move the corrupt file `path` to `<path>.corrupt-<unix ms>`, owner-only, and return
/// the new name. Nothing is deleted: the data stays there for inspection.
pub(crate) fn set_aside(path: &Path) -> io::Result<PathBuf> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{ms}"));
    let aside = PathBuf::from(name);
    fs::rename(path, &aside)?;
    make_private(&aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        assert!(!check_dir(&store).unwrap());
        create_dir(&store).unwrap();
        assert_eq!(
            fs::metadata(&store).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(&store, fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_dir(&store).unwrap_err().to_string();
        assert!(err.contains("other users can write"), "{err}");
        assert!(create_dir(&store).is_err());
        // Group-writable (a user-private group's umask) is the owner's choice.
        fs::set_permissions(&store, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(check_dir(&store).unwrap());
    }

    #[test]
    fn a_file_is_not_a_store_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(check_dir(&file).is_err());
        // Below a file: nothing there to read, and nothing can be created.
        assert!(!check_dir(&file.join("below")).unwrap());
        assert!(create_dir(&file.join("below")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn set_aside_keeps_the_data_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        fs::write(&path, b"junk").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let aside = set_aside(&path).unwrap();
        assert!(!path.exists());
        assert_eq!(fs::read(&aside).unwrap(), b"junk");
        assert_eq!(
            fs::metadata(&aside).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(aside.to_string_lossy().contains("users.db.corrupt-"));
    }
}
