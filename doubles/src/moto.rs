//! A moto server (the AWS API mock, `moto[server]`, which `scripts/test.sh` installs) on a free
//! 127.0.0.1 port, for tests of real AWS SDK clients: each test starts its own, so tests stay
//! parallel-safe, and it is killed when the [`Moto`] is dropped.
//!
//! The program is `MOTO_SERVER`, else `moto_server` on `PATH`, else
//! `$LLM_EVAL_CACHE/venv/bin/moto_server` (default cache `~/.cache/llm-eval`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running moto server, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    /// Starts moto and waits (at most 30 s) until it accepts connections.
    ///
    /// # Panics
    ///
    /// When `moto_server` is not installed or does not listen in time: this is for tests.
    pub async fn start() -> Moto {
        Moto::start_with_env(&[]).await
    }

    /// Like [`Moto::start`], with extra environment variables for the server (moto reads some
    /// settings from its environment, such as `MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP`).
    ///
    /// # Panics
    ///
    /// As [`Moto::start`].
    pub async fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect();
            Moto::start_blocking_with_env(&env)
        })
        .await
        .expect("starting moto_server")
    }

    /// [`Moto::start`] for synchronous tests.
    ///
    /// # Panics
    ///
    /// As [`Moto::start`].
    pub fn start_blocking() -> Moto {
        Moto::start_blocking_with_env(&[])
    }

    /// [`Moto::start_with_env`] for synchronous tests.
    ///
    /// # Panics
    ///
    /// As [`Moto::start`].
    pub fn start_blocking_with_env(env: &[(&str, &str)]) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(program())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts (run scripts/test.sh to install it)");
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on port {port} within 30 s");
    }

    /// `http://127.0.0.1:<port>`, for `endpoint_url` / `AWS_ENDPOINT_URL`.
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

/// The test cache `scripts/test.sh` fills: `$LLM_EVAL_CACHE`, default `~/.cache/llm-eval`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LLM_EVAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/llm-eval")))
        .unwrap_or_default()
}
