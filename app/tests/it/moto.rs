//! A moto server per test: its own process on a free 127.0.0.1 port, killed when the handle
//! drops, so tests that create AWS resources (secrets, user pools) never see each other's.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A running moto server.
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `moto_server`: `MOTO_SERVER`, else on `PATH`, else in the venv `scripts/test.sh` installs.
fn moto_server_program() -> PathBuf {
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
    let cache = std::env::var_os("LLM_EVAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/llm-eval")))
        .unwrap_or_default();
    let venv = cache.join("venv/bin/moto_server");
    assert!(
        venv.is_file(),
        "moto_server not found (MOTO_SERVER, PATH, {}): run scripts/test.sh, which installs it",
        venv.display()
    );
    venv
}

/// A fresh moto server.
pub async fn start_moto() -> Moto {
    start_moto_with_env(&[]).await
}

/// A fresh moto server with extra environment variables (moto reads some settings, such as
/// `MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP`, from its environment).
pub async fn start_moto_with_env(env: &[(&str, &str)]) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let child = std::process::Command::new(moto_server_program())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto_server starts (run scripts/test.sh to install it)");
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not listen on port {port} within 30 s");
}
