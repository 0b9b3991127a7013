//! Files and directories only their owner can read: the run store, the response cache, the
//! result files and the web app's uploaded datasets hold prompts and answers, so they are
//! created 0600 (directories 0700) whatever the umask, instead of the usual 0644 / 0755 that
//! lets every local user read them.
//!
//! SQLite creates a database's `-wal` and `-shm` files with the database file's permissions, so
//! creating the database file here first makes those private too.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the files created here.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories created here.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents as 0700; an existing directory is left as it is (it
/// may be shared on purpose).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates `path` empty as 0600 when it does not exist yet (an existing file is kept as is);
/// used before SQLite opens a database so that it and its journal files are private.
pub fn touch(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Creates or truncates `path` for writing, readable only by its owner (an existing result file
/// made by an older version with 0644 is made 0600 too).
pub fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// [`create`] for async code: the web app's uploaded datasets.
pub async fn create_async(path: &Path) -> io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .await?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .await?;
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        let db = nested.join("x.sqlite");
        touch(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        touch(&db).unwrap();
        let out = nested.join("records.jsonl");
        std::fs::write(&out, "old").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create(&out).unwrap());
        assert_eq!(mode(&out), 0o600);
        assert_eq!(std::fs::read(&out).unwrap(), b"");
    }

    #[tokio::test]
    async fn async_files_are_private_too() {
        let dir = tempfile::tempdir().unwrap();
        let upload = dir.path().join("upload.jsonl");
        std::fs::write(&upload, "old").unwrap();
        std::fs::set_permissions(&upload, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_async(&upload).await.unwrap());
        assert_eq!(mode(&upload), 0o600);
        assert_eq!(std::fs::read(&upload).unwrap(), b"");
    }
}
