//! The native builder: compile `llm-eval` in release mode with cargo (or take `--binary`),
//! check its architecture against the task definition, and lay out the image's files.
//!
//! The image holds exactly: the loader and the shared libraries the binary's loader resolves
//! (see `elf`), this machine's CA bundle at `/etc/ssl/certs/ca-certificates.crt`,
//! `/etc/passwd`, `/etc/group` and `/etc/nsswitch.conf` for the task's user (numeric id from
//! the app stack's `APP_USER`) with a home directory it owns, a world-writable sticky `/tmp`,
//! and the binary at `/usr/local/bin/llm-eval`. No shell, no package manager. glibc 2.34 and
//! later have the `files` and `dns` name services inside libc, so name resolution needs no
//! `dlopen`ed module the loader would not list.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stacks::stacks::app::{APP_PORT, APP_USER};

use super::elf;
use super::layout::{self, Content, Layer, RunConfig};
use super::process::{self, Stderr};
use super::{BuildOptions, BuiltImage, ImageError, Platform};

/// Where the binary is in the image; the health check (`llm-eval healthcheck`) finds it via `PATH`.
pub const BINARY_PATH: &str = "/usr/local/bin/llm-eval";
/// `PATH` of the image.
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Name of the task's user in `/etc/passwd`.
pub const USER_NAME: &str = "llm-eval";
/// Its home: writable by it alone.
pub const HOME: &str = "/home/llm-eval";
/// Where the CA bundle is in the image (Debian's path, which rustls-native-certs and
/// OpenSSL-style probes look at first; `SSL_CERT_FILE` names it too).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A cold release build of the workspace takes about 15 minutes on 2 cores.
const CARGO_LIMIT: Duration = Duration::from_secs(90 * 60);

/// Where CA bundles are on common distributions (as openssl-probe looks for them).
const CA_CANDIDATES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Builds the image; see the module docs.
pub fn build(options: &BuildOptions) -> Result<BuiltImage, ImageError> {
    if std::env::consts::OS != "linux" {
        return Err(ImageError::UnsupportedHost {
            os: std::env::consts::OS,
        });
    }
    let host = Platform::host();
    let binary = match &options.binary {
        Some(binary) => binary.clone(),
        None if host != Some(options.platform) => {
            return Err(ImageError::ArchitectureUnavailable {
                platform: options.platform,
                host: std::env::consts::ARCH,
            });
        }
        None => cargo_build(&options.workspace)?,
    };
    let info = elf::read(&binary)?;
    if info.machine != Ok(options.platform) {
        return Err(ImageError::ArchitectureMismatch {
            path: binary,
            found: info.machine_name(),
            platform: options.platform,
        });
    }
    // The libraries are found by running the binary's loader, which only runs on its own
    // architecture; a static binary for another one needs no loader.
    if info.interpreter.is_some() && host != Some(options.platform) {
        return Err(ImageError::ArchitectureUnavailable {
            platform: options.platform,
            host: std::env::consts::ARCH,
        });
    }
    let runtime = elf::runtime(&binary, &info)?;
    let ca_bundle = find_ca_bundle(std::env::var_os("SSL_CERT_FILE").map(PathBuf::from))?;
    let (uid, gid) = app_user();

    let mut base = Layer::new("deployer image build: shared libraries, CA certificates, user");
    for file in &runtime.files {
        base.file(&file.to_string_lossy(), 0o755, Content::File(file.clone()));
    }
    base.file(CA_BUNDLE, 0o644, Content::File(ca_bundle));
    base.file(
        "/etc/passwd",
        0o644,
        Content::Bytes(
            format!(
                "root:x:0:0:root:/root:/sbin/nologin\n{USER_NAME}:x:{uid}:{gid}:llm-eval:{HOME}:/sbin/nologin\n"
            )
            .into_bytes(),
        ),
    );
    base.file(
        "/etc/group",
        0o644,
        Content::Bytes(format!("root:x:0:\n{USER_NAME}:x:{gid}:\n").into_bytes()),
    );
    base.file(
        "/etc/nsswitch.conf",
        0o644,
        Content::Bytes(b"passwd: files\ngroup: files\nhosts: files dns\n".to_vec()),
    );
    base.dir(HOME, 0o700, uid, gid);
    base.dir("/tmp", 0o1777, 0, 0);

    let mut app = Layer::new("deployer image build: llm-eval");
    app.file(BINARY_PATH, 0o755, Content::File(binary));

    let mut env = vec![
        format!("PATH={PATH}"),
        format!("HOME={HOME}"),
        format!("SSL_CERT_FILE={CA_BUNDLE}"),
        // The app's own default is 127.0.0.1, which nothing outside the container reaches.
        format!("LLM_EVAL_BIND=0.0.0.0:{APP_PORT}"),
    ];
    if !runtime.extra_library_dirs.is_empty() {
        let dirs: Vec<String> = runtime
            .extra_library_dirs
            .iter()
            .map(|dir| dir.to_string_lossy().into_owned())
            .collect();
        env.push(format!("LD_LIBRARY_PATH={}", dirs.join(":")));
    }
    let run = RunConfig {
        user: APP_USER.to_owned(),
        env,
        entrypoint: vec![BINARY_PATH.to_owned(), "serve".to_owned()],
        working_dir: HOME.to_owned(),
        exposed_ports: vec![format!("{APP_PORT}/tcp")],
    };
    layout::write(&options.out_dir, options.platform, &[base, app], &run)
}

/// The numeric user and group of the app stack's task definition.
fn app_user() -> (u64, u64) {
    let (uid, gid) = APP_USER.split_once(':').unwrap_or((APP_USER, APP_USER));
    (
        uid.parse().expect("APP_USER is numeric uid:gid"),
        gid.parse().expect("APP_USER is numeric uid:gid"),
    )
}

/// `cargo build --release --locked -p llm-eval --bin llm-eval` in the workspace; the binary's path
/// comes from cargo's own JSON messages, so `CARGO_TARGET_DIR` and `build.target-dir` work.
fn cargo_build(workspace: &Path) -> Result<PathBuf, ImageError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "llm-eval",
        "--bin",
        "llm-eval",
        "--message-format=json-render-diagnostics",
    ]);
    let finished = process::run(&mut command, None, Stderr::Inherit, CARGO_LIMIT)?;
    executable_of(&String::from_utf8_lossy(&finished.stdout)).ok_or_else(|| ImageError::Command {
        command: process::describe(&command),
        problem: "finished without naming the llm-eval executable".to_owned(),
    })
}

/// The last `compiler-artifact` message's executable for the `llm-eval` target.
fn executable_of(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message.get("reason").and_then(|reason| reason.as_str()) == Some("compiler-artifact")
                && message
                    .pointer("/target/name")
                    .and_then(|name| name.as_str())
                    == Some("llm-eval")
        })
        .filter_map(|message| {
            message
                .get("executable")
                .and_then(|path| path.as_str())
                .map(PathBuf::from)
        })
        .next()
}

/// `SSL_CERT_FILE`, else the first bundle of [`CA_CANDIDATES`] that holds a certificate.
fn find_ca_bundle(from_env: Option<PathBuf>) -> Result<PathBuf, ImageError> {
    let mut tried = Vec::new();
    let candidates = from_env
        .into_iter()
        .chain(CA_CANDIDATES.iter().map(PathBuf::from));
    for candidate in candidates {
        let holds_certificate = std::fs::read(&candidate)
            .map(|bytes| {
                bytes
                    .windows(27)
                    .any(|window| window == b"-----BEGIN CERTIFICATE-----")
            })
            .unwrap_or(false);
        if holds_certificate {
            return Ok(candidate);
        }
        tried.push(candidate);
    }
    Err(ImageError::NoCaBundle { tried })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    #[test]
    fn executable_from_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"engine","kind":["lib"]},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"llm-eval","kind":["bin"]},"executable":"/t/release/llm-eval"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\n",
        );
        assert_eq!(
            executable_of(messages),
            Some(PathBuf::from("/t/release/llm-eval"))
        );
        assert_eq!(
            executable_of(r#"{"reason":"build-finished","success":true}"#),
            None
        );
        assert_eq!(executable_of("not json\n"), None);
    }

    #[test]
    fn ca_bundle_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let good = dir.path().join("good.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(find_ca_bundle(Some(good.clone())).unwrap(), good);
        // An empty SSL_CERT_FILE falls through to the system bundle (or names every path tried).
        match find_ca_bundle(Some(empty.clone())) {
            Ok(found) => assert_ne!(found, empty),
            Err(ImageError::NoCaBundle { tried }) => assert_eq!(tried[0], empty),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn app_user_is_numeric() {
        assert_eq!(app_user(), (10001, 10001));
    }

    #[test]
    fn a_foreign_platform_without_binary_points_at_docker() {
        let other = match Platform::host() {
            Some(Platform::X86_64) => Platform::Arm64,
            _ => Platform::X86_64,
        };
        let dir = tempfile::tempdir().unwrap();
        let err = build(&BuildOptions {
            binary: None,
            platform: other,
            out_dir: dir.path().join("out"),
            workspace: dir.path().to_owned(),
            builder: super::super::Builder::Native,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--builder docker") && err.contains("bootstrap"),
            "{err}"
        );
        assert!(!dir.path().join("out").exists(), "nothing written");
    }

    #[test]
    fn a_binary_of_the_wrong_architecture_is_refused() {
        let me = std::env::current_exe().unwrap();
        let other = match Platform::host() {
            Some(Platform::X86_64) => Platform::Arm64,
            _ => Platform::X86_64,
        };
        let dir = tempfile::tempdir().unwrap();
        let err = build(&BuildOptions {
            binary: Some(me),
            platform: other,
            out_dir: dir.path().join("out"),
            workspace: dir.path().to_owned(),
            builder: super::super::Builder::Native,
        })
        .unwrap_err();
        assert!(
            matches!(err, ImageError::ArchitectureMismatch { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("the task definition runs"),
            "{err}"
        );
    }
}
