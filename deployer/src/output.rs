//! Everything commands print on stdout goes through [`Stdout`], the one place that handles a
//! closed stdout: a reader that went away (`deployer synth | head`) is not an error, the rest
//! of the output is dropped and the command's own outcome still decides the exit code.
//! Progress and diagnostics go to stderr, so stdout stays machine-readable.

use std::io::Write;

use anyhow::Context;

/// The process's stdout, created once by `main`.
#[derive(Debug, Default)]
pub struct Stdout {
    closed: bool,
}

impl Stdout {
    /// Writes and flushes `bytes`; after the reader has gone, does nothing.
    pub fn print(&mut self, bytes: impl AsRef<[u8]>) -> anyhow::Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(bytes.as_ref())
            .and_then(|()| stdout.flush())
        {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            res => res.context("writing to stdout"),
        }
    }
}

/// Opens `path` for appending, created with mode 0600 and made 0600 when it exists (an existing
/// file keeps its mode on open; files of passwords are never group-readable); returns the file
/// and whether it was empty, so the caller writes its header once.
pub fn open_private_append(path: &std::path::Path) -> anyhow::Result<(std::fs::File, bool)> {
    use anyhow::Context;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private (mode 0600)", path.display()))?;
    }
    let is_new = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len()
        == 0;
    Ok((file, is_new))
}
