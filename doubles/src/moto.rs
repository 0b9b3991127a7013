//! A moto server (the AWS API emulator, `moto[server]`, installed by `scripts/test.sh`) of a
//! test's own on `127.0.0.1` and a free port, killed when dropped, so tests that need AWS APIs
//! stay parallel-safe and never share state.
//!
//! The program is `$MOTO_SERVER`, else `moto_server` on `PATH`, else the venv in
//! `$LLM_EVAL_CACHE` (default `~/.cache/llm-eval/venv`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    /// Starts a server and waits (at most 30 s) until it accepts connections.
    pub fn start() -> std::io::Result<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(program()?)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(std::io::Error::other(format!(
            "moto_server did not listen on port {port} within 30 s"
        )))
    }

    /// Base URL, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program() -> std::io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return Ok(path.into());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = on_path {
        return Ok(path);
    }
    let cache = std::env::var_os("LLM_EVAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/llm-eval")))
        .unwrap_or_default();
    let venv = cache.join("venv/bin/moto_server");
    if venv.is_file() {
        Ok(venv)
    } else {
        Err(std::io::Error::other(format!(
            "moto_server not found (MOTO_SERVER, PATH, {}): run scripts/test.sh, which installs it",
            venv.display()
        )))
    }
}
