//! A moto server of a test's own on 127.0.0.1 and a free port, killed when dropped.
//!
//! The program is `$MOTO_SERVER`, else `moto_server` on `PATH`, else the venv `scripts/test.sh`
//! installs in `$LLM_EVAL_CACHE` (default `~/.cache/llm-eval`).
// Other branches are moving this helper into the shared `model-doubles` crate; once it is there,
// this file gives way to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = Command::new(program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts (run scripts/test.sh to install it)");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on port {port} within 30 s");
    }

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

fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = on_path {
        return path;
    }
    let venv = cache_dir().join("venv/bin/moto_server");
    assert!(
        venv.is_file(),
        "moto_server not found (MOTO_SERVER, PATH, {}): run scripts/test.sh, which installs it",
        venv.display()
    );
    venv
}

/// `$LLM_EVAL_CACHE`, default `~/.cache/llm-eval`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LLM_EVAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/llm-eval")))
        .unwrap_or_default()
}
