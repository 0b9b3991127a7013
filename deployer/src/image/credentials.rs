//! Credentials for registries other than ECR: an explicit user and password (the CLI's
//! `--registry-user` and `REGISTRY_PASSWORD`), else Docker's `config.json` (`$DOCKER_CONFIG`,
//! else `~/.docker`) with its per-registry credential helpers, its credential store and its
//! inline `auths`, looked up as the Docker CLI does; else anonymous.
//!
//! Invariant: a secret is read into a `SecretString` and never echoed; errors name the file
//! and the key, or the helper, never the value.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use secrecy::SecretString;
use serde_json::Value as Json;

use super::process::{self, Stderr};
use super::{ImageError, RegistryAuth};

/// A credential helper asks a keychain; it should answer at once.
const HELPER_LIMIT: Duration = Duration::from_secs(30);

/// Largest `config.json` read.
const MAX_CONFIG: u64 = 1 << 20;

/// The key Docker files Docker Hub's credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for `registry_host`: `explicit` when given, else Docker's configuration, else
/// anonymous.
pub fn registry_auth(
    registry_host: &str,
    explicit: Option<(String, SecretString)>,
) -> Result<RegistryAuth, ImageError> {
    if let Some((username, password)) = explicit {
        return Ok(RegistryAuth::Basic { username, password });
    }
    let Some(dir) = docker_config_dir() else {
        return Ok(RegistryAuth::Anonymous);
    };
    Ok(from_docker_config(&dir, registry_host)?.unwrap_or(RegistryAuth::Anonymous))
}

fn docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".docker"))
}

/// The credentials `dir/config.json` holds for `registry_host`, if any.
pub fn from_docker_config(
    dir: &Path,
    registry_host: &str,
) -> Result<Option<RegistryAuth>, ImageError> {
    lookup(dir, registry_host, None)
}

/// [`from_docker_config`], finding credential helpers on `helper_path` instead of `PATH`.
fn lookup(
    dir: &Path,
    registry_host: &str,
    helper_path: Option<&OsStr>,
) -> Result<Option<RegistryAuth>, ImageError> {
    let path = dir.join("config.json");
    let bytes = match std::fs::File::open(&path) {
        Ok(file) => {
            use std::io::Read as _;
            let mut bytes = Vec::new();
            file.take(MAX_CONFIG + 1)
                .read_to_end(&mut bytes)
                .map_err(ImageError::io("reading", &path))?;
            bytes
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(ImageError::io("reading", &path)(err)),
    };
    let config_error =
        |problem: String| ImageError::Credentials(format!("{}: {problem}", path.display()));
    if bytes.len() as u64 > MAX_CONFIG {
        return Err(config_error(format!("larger than {MAX_CONFIG} bytes")));
    }
    let config: Json = serde_json::from_slice(&bytes)
        .map_err(|err| config_error(format!("invalid JSON: {err}")))?;
    let key = server_key(registry_host);
    let helper = config
        .get("credHelpers")
        .and_then(|helpers| helpers.get(&key).or_else(|| helpers.get(registry_host)))
        .or_else(|| config.get("credsStore"))
        .and_then(Json::as_str)
        .filter(|name| !name.is_empty());
    if let Some(helper) = helper {
        return from_helper(helper, &key, helper_path);
    }
    let Some(auths) = config.get("auths").and_then(Json::as_object) else {
        return Ok(None);
    };
    let Some((found_key, entry)) = auths
        .iter()
        .find(|(candidate, _)| normalize(candidate) == normalize(&key))
    else {
        return Ok(None);
    };
    if entry
        .get("identitytoken")
        .and_then(Json::as_str)
        .is_some_and(|token| !token.is_empty())
    {
        return Err(config_error(format!(
            "auths.\"{found_key}\" holds an identity token, which deployer cannot use; pass --registry-user with REGISTRY_PASSWORD"
        )));
    }
    let Some(encoded) = entry
        .get("auth")
        .and_then(Json::as_str)
        .filter(|auth| !auth.is_empty())
    else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|text| text.split_once(':')) {
        Some((username, password)) if !username.is_empty() => Ok(Some(RegistryAuth::Basic {
            username: username.to_owned(),
            password: SecretString::from(password.to_owned()),
        })),
        _ => Err(config_error(format!(
            "auths.\"{found_key}\".auth is not base64 of user:password"
        ))),
    }
}

/// Runs `docker-credential-<helper> get` for `server`.
fn from_helper(
    helper: &str,
    server: &str,
    helper_path: Option<&OsStr>,
) -> Result<Option<RegistryAuth>, ImageError> {
    let program = format!("docker-credential-{helper}");
    let mut command = Command::new(&program);
    command.arg("get");
    if let Some(path) = helper_path {
        // Setting PATH on the command makes std search it for the program too.
        command.env("PATH", path);
    }
    let outcome = process::run_unchecked(
        &mut command,
        Some(server.as_bytes().to_vec()),
        Stderr::Capture,
        HELPER_LIMIT,
    )?;
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    match outcome.status {
        Some(status) if status.success() => {}
        // The helpers' protocol: this text on stdout means "nothing stored for this server".
        Some(_) if stdout.contains("credentials not found") => return Ok(None),
        _ => return Err(outcome.failure(&command)),
    }
    let answer: Json = serde_json::from_str(&stdout)
        .map_err(|_| ImageError::Credentials(format!("`{program} get` did not answer JSON")))?;
    let field = |key: &str| answer.get(key).and_then(Json::as_str).unwrap_or_default();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    if username == "<token>" {
        return Err(ImageError::Credentials(format!(
            "`{program}` holds an identity token for {server}, which deployer cannot use; pass --registry-user with REGISTRY_PASSWORD"
        )));
    }
    Ok(Some(RegistryAuth::Basic {
        username: username.to_owned(),
        password: SecretString::from(secret.to_owned()),
    }))
}

/// The key Docker uses for a registry: Docker Hub has its historic URL, others their host.
fn server_key(registry_host: &str) -> String {
    match registry_host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_owned(),
        host => host.to_owned(),
    }
}

/// `https://host:5000/v2/` → `host:5000`, as the Docker CLI matches `auths` keys.
fn normalize(key: &str) -> String {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_ascii_lowercase()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use secrecy::ExposeSecret;

    use super::*;

    fn basic(auth: Option<RegistryAuth>) -> Option<(String, String)> {
        match auth {
            Some(RegistryAuth::Basic { username, password }) => {
                Some((username, password.expose_secret().to_owned()))
            }
            Some(other) => panic!("{other:?}"),
            None => None,
        }
    }

    fn config(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    #[test]
    fn inline_auths_match_by_host() {
        let token = base64::engine::general_purpose::STANDARD.encode("ci:s3cret");
        let dir = config(&format!(
            r#"{{"auths": {{"https://registry.example.com/v2/": {{"auth": "{token}"}}, "https://index.docker.io/v1/": {{"auth": "{token}"}}}}}}"#
        ));
        let found = from_docker_config(dir.path(), "registry.example.com").unwrap();
        assert_eq!(basic(found), Some(("ci".into(), "s3cret".into())));
        let hub = from_docker_config(dir.path(), "docker.io").unwrap();
        assert_eq!(basic(hub), Some(("ci".into(), "s3cret".into())));
        assert!(
            from_docker_config(dir.path(), "other.example.com")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_missing_config_is_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert!(from_docker_config(dir.path(), "ghcr.io").unwrap().is_none());
    }

    #[test]
    fn bad_entries_name_the_file_and_key_not_the_value() {
        let dir = config(r#"{"auths": {"ghcr.io": {"auth": "bm90LWEtcGFpcg=="}}}"#);
        let err = from_docker_config(dir.path(), "ghcr.io")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains("auths.\"ghcr.io\".auth"),
            "{err}"
        );
        assert!(!err.contains("bm90LWEtcGFpcg"), "{err}");
        let dir = config("{not json");
        let err = from_docker_config(dir.path(), "ghcr.io")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid JSON"), "{err}");
        let dir = config(r#"{"auths": {"ghcr.io": {"identitytoken": "tok"}}}"#);
        let err = from_docker_config(dir.path(), "ghcr.io")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("identity token") && !err.contains("tok\""),
            "{err}"
        );
    }

    /// A real helper process speaking the helper protocol (stdin: server; stdout: JSON).
    #[test]
    fn credential_helpers_are_asked() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-deployertest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$server\" = ghcr.io ]; then echo '{\"ServerURL\":\"ghcr.io\",\"Username\":\"bot\",\"Secret\":\"pw\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credHelpers": {"ghcr.io": "deployertest"}, "credsStore": "deployertest"}"#,
        )
        .unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        let found = lookup(dir.path(), "ghcr.io", Some(&path)).unwrap();
        assert_eq!(basic(found), Some(("bot".into(), "pw".into())));
        let none = lookup(dir.path(), "quay.io", Some(&path)).unwrap();
        assert!(none.is_none());
        let dir_without_helper = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([dir_without_helper.path()]).unwrap();
        let err = lookup(dir.path(), "ghcr.io", Some(&path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("docker-credential-deployertest get") && err.contains("program not found"),
            "{err}"
        );
    }

    #[test]
    fn keys_normalize_like_docker() {
        assert_eq!(
            normalize("https://registry.example.com:5000/v2/"),
            "registry.example.com:5000"
        );
        assert_eq!(normalize("ghcr.io"), "ghcr.io");
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("ghcr.io"), "ghcr.io");
    }
}
