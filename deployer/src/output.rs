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
