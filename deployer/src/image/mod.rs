//! The app image, built and pushed without a Docker daemon.
//!
//! `build` compiles `llm-eval` (or takes a given binary), checks that its architecture is the
//! task definition's, and writes an OCI image layout: one base layer (the shared libraries the
//! binary links, found by the binary's own dynamic loader; the CA bundle; `/etc/passwd` and
//! `/etc/group` for the task's non-root user with a writable home; `/tmp`) and one layer with
//! the binary at `/usr/local/bin/llm-eval`. There is no shell. The layers are tar streams with
//! fixed times, owners and order, and nothing in the config depends on the clock, so the same
//! inputs always give the same manifest digest. `push` uploads that layout with the registry v2
//! API, skipping blobs and a manifest the registry already has, and tags the image with its
//! digest.
//!
//! The API the deploy commands call (keep these names; `up` builds on them):
//! - [`build`]`(&BuildOptions) -> Result<BuiltImage, ImageError>`: blocking (it runs cargo or
//!   docker and compresses the layers), so async callers wrap it in `spawn_blocking`.
//!   [`BuiltImage::open`] reads back a layout written earlier.
//! - [`push`]`(&BuiltImage, &PushTarget, progress) -> Result<PushedImage, ImageError>`: async;
//!   `progress` receives a [`PushEvent`] per blob and for the manifest.
//! - [`ecr_auth`]`(&SdkConfig, registry_host) -> Result<RegistryAuth, ImageError>`: HTTP Basic
//!   `AWS:<token>` from `ecr:GetAuthorizationToken`; [`ecr::is_ecr_host`] says when to use it.
//! - [`registry_auth`] resolves the credentials for any other registry (explicit user and
//!   password, else Docker's `config.json` and credential helpers, else anonymous).
//!
//! Invariants: nothing here prints; progress goes through the callback and failures are
//! [`ImageError`]s that name the file, command or registry operation. Passwords and tokens are
//! [`SecretString`]s and never reach `Debug`, logs or error messages. A registry on 127.0.0.1,
//! `[::1]` or localhost is spoken to over plain HTTP (as Docker does); every other one over
//! HTTPS only.

mod credentials;
mod docker;
pub mod ecr;
mod elf;
mod layout;
mod native;
mod process;
mod push;

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;

pub use credentials::registry_auth;
pub use ecr::ecr_auth;
pub use layout::Descriptor;
pub use push::{Repository, push};

/// CPU architecture of the image, as the ECS task definition's `RuntimePlatform` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// `X86_64` (OCI `linux/amd64`).
    X86_64,
    /// `ARM64` (OCI `linux/arm64`).
    Arm64,
}

impl Platform {
    /// The task definition's spelling (`CpuArchitecture`).
    pub fn cpu_architecture(self) -> &'static str {
        match self {
            Platform::X86_64 => "X86_64",
            Platform::Arm64 => "ARM64",
        }
    }

    /// The OCI image config's `architecture`.
    pub fn oci_architecture(self) -> &'static str {
        match self {
            Platform::X86_64 => "amd64",
            Platform::Arm64 => "arm64",
        }
    }

    /// Rust's `std::env::consts::ARCH` for this platform.
    fn rust_arch(self) -> &'static str {
        match self {
            Platform::X86_64 => "x86_64",
            Platform::Arm64 => "aarch64",
        }
    }

    /// The platform of the machine this runs on, if it is one an image can be built for.
    pub fn host() -> Option<Platform> {
        [Platform::X86_64, Platform::Arm64]
            .into_iter()
            .find(|platform| platform.rust_arch() == std::env::consts::ARCH)
    }

    /// The `RuntimePlatform.CpuArchitecture` of the first ECS task definition in a synthesized
    /// template; ECS's default (`X86_64`) when the task definition does not set one, `None`
    /// when the template has no task definition or names an architecture we do not know.
    pub fn of_task_definition(template: &serde_json::Value) -> Option<Platform> {
        let resources = template.get("Resources")?.as_object()?;
        let task_definition = resources.values().find(|resource| {
            resource.get("Type").and_then(|kind| kind.as_str()) == Some("AWS::ECS::TaskDefinition")
        })?;
        match task_definition
            .pointer("/Properties/RuntimePlatform/CpuArchitecture")
            .map(|value| value.as_str())
        {
            None => Some(Platform::X86_64),
            Some(Some(name)) => name.parse().ok(),
            Some(None) => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (linux/{})",
            self.cpu_architecture(),
            self.oci_architecture()
        )
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    /// Accepts the ECS names (`X86_64`, `ARM64`) and the OCI and Rust ones (`amd64`,
    /// `linux/arm64`, `aarch64`), in any case.
    fn from_str(value: &str) -> Result<Platform, String> {
        let lower = value.to_ascii_lowercase();
        match lower.strip_prefix("linux/").unwrap_or(&lower) {
            "x86_64" | "x86-64" | "amd64" => Ok(Platform::X86_64),
            "arm64" | "aarch64" => Ok(Platform::Arm64),
            _ => Err(format!(
                "unknown platform `{value}`: expected X86_64 or ARM64 (the task definition's CPU architecture)"
            )),
        }
    }
}

/// How the image is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builder {
    /// Compile with cargo on this machine (or take `--binary`) and assemble the layout here.
    #[default]
    Native,
    /// `docker build` on `app/llm-eval/Dockerfile`, then `docker save` into the same layout format.
    Docker,
}

/// What [`build`] builds.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Pack this already built `llm-eval` binary instead of compiling one (native builder only).
    pub binary: Option<PathBuf>,
    /// The task definition's runtime platform; the image must match it.
    pub platform: Platform,
    /// Directory of the OCI image layout (created; an existing layout is replaced).
    pub out_dir: PathBuf,
    /// The workspace root (holds `Cargo.toml` and `app/llm-eval/Dockerfile`); unused with `binary`.
    pub workspace: PathBuf,
    /// Native (default) or Docker.
    pub builder: Builder,
}

/// An image in an OCI layout directory, ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The OCI image layout directory.
    pub layout_dir: PathBuf,
    /// `sha256:<hex>` of the image manifest: the image's identity.
    pub manifest_digest: String,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// Media type of the manifest (OCI image manifest).
    pub manifest_media_type: String,
    /// `sha256:<hex>` of the image config.
    pub config_digest: String,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, base first.
    pub layers: Vec<Descriptor>,
    /// The image's architecture.
    pub platform: Platform,
    /// Sum of the compressed layer sizes: what a registry stores and a task pulls.
    pub compressed_size: u64,
}

impl BuiltImage {
    /// Reads the image of an OCI layout directory (one written by [`build`], or any layout
    /// holding exactly one image manifest with gzip layers).
    pub fn open(layout_dir: &std::path::Path) -> Result<BuiltImage, ImageError> {
        layout::open(layout_dir)
    }

    /// The tag the image gets in the registry: its digest, `sha256_<hex>` (not `sha256-<hex>`,
    /// which the OCI referrers tag schema reserves).
    pub fn digest_tag(&self) -> String {
        self.manifest_digest.replacen(':', "_", 1)
    }
}

/// Builds the image; see the module docs.
pub fn build(options: &BuildOptions) -> Result<BuiltImage, ImageError> {
    match options.builder {
        Builder::Native => native::build(options),
        Builder::Docker => docker::build(options),
    }
}

/// Credentials for a registry. Secrets are never printed (`Debug` redacts them).
#[derive(Clone)]
pub enum RegistryAuth {
    /// No credentials.
    Anonymous,
    /// HTTP Basic (ECR: user `AWS` and the token from `GetAuthorizationToken`).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: SecretString,
    },
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryAuth::Anonymous => f.write_str("Anonymous"),
            RegistryAuth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Where [`push`] pushes to.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// `host[:port]/path`, without tag or digest (`123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval`).
    pub repository: String,
    /// Credentials for the registry.
    pub auth: RegistryAuth,
}

/// Which blob of the image an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// Layer number (0 = base).
    Layer(usize),
    /// The image config.
    Config,
}

/// Progress of [`push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The registry already has this blob; not uploaded.
    BlobExists {
        /// Which blob.
        kind: BlobKind,
        /// Its digest.
        digest: String,
        /// Its size in bytes.
        size: u64,
    },
    /// Uploading this blob now.
    BlobUploading {
        /// Which blob.
        kind: BlobKind,
        /// Its digest.
        digest: String,
        /// Its size in bytes.
        size: u64,
    },
    /// This blob was uploaded.
    BlobUploaded {
        /// Which blob.
        kind: BlobKind,
        /// Its digest.
        digest: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The registry already has the manifest under the digest tag; not uploaded.
    ManifestExists {
        /// The manifest digest.
        digest: String,
        /// The tag.
        tag: String,
    },
    /// The manifest was uploaded and tagged.
    ManifestUploaded {
        /// The manifest digest.
        digest: String,
        /// The tag.
        tag: String,
    },
}

/// What [`push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    /// `repository@sha256:<hex>`: what the task definition's `Image` should be.
    pub uri_by_digest: String,
    /// The manifest digest.
    pub digest: String,
    /// The tag the image carries (`sha256_<hex>`).
    pub tag: String,
    /// Blobs (layers and config) uploaded; 0 when the registry had them all.
    pub n_blobs_uploaded: usize,
    /// Bytes uploaded in blobs.
    pub n_bytes_uploaded: u64,
    /// Whether the manifest was uploaded (false when the registry already had it, tagged).
    pub manifest_uploaded: bool,
}

/// Everything that can go wrong building or pushing an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The native builder needs Linux.
    #[error(
        "the native image builder runs on Linux only (this is {os}): the image holds this machine's binary and libraries; use `--builder docker`, or deploy from the one-click bootstrap (CodeBuild)"
    )]
    UnsupportedHost {
        /// `std::env::consts::OS`.
        os: &'static str,
    },
    /// The host cannot produce a binary for the wanted platform.
    #[error(
        "cannot build an image for {platform} on this {host} machine: the native builder packs a binary compiled here and its libraries; use `--builder docker` (Docker with QEMU emulation builds other platforms), pass `--binary` built for {platform}, or deploy from the one-click bootstrap (CodeBuild)"
    )]
    ArchitectureUnavailable {
        /// Wanted.
        platform: Platform,
        /// `std::env::consts::ARCH`.
        host: &'static str,
    },
    /// The binary is for another architecture than the task definition.
    #[error(
        "{}: the binary is built for {found}, but the task definition runs {platform}; build it for {platform} or use `--builder docker`",
        .path.display()
    )]
    ArchitectureMismatch {
        /// The binary.
        path: PathBuf,
        /// What the ELF header says.
        found: String,
        /// Wanted.
        platform: Platform,
    },
    /// Not a 64-bit Linux ELF executable.
    #[error("{}: not a 64-bit ELF executable ({reason})", .path.display())]
    NotAnExecutable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A command (cargo, the dynamic loader, docker, a credential helper) could not run or failed.
    #[error("`{command}` {problem}")]
    Command {
        /// The command line (no secrets: we never put one on a command line).
        command: String,
        /// What happened (exit status and the end of its stderr, or why it did not start).
        problem: String,
    },
    /// A shared library the binary links was not found by the dynamic loader.
    #[error(
        "{}: the dynamic loader finds no `{library}`, which the binary links; install it or build a static binary",
        .binary.display()
    )]
    MissingLibrary {
        /// The binary.
        binary: PathBuf,
        /// The library's soname.
        library: String,
    },
    /// No CA certificate bundle on this machine.
    #[error(
        "no CA certificate bundle found (looked at {}); install the ca-certificates package or set SSL_CERT_FILE",
        .tried.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoCaBundle {
        /// Every path looked at.
        tried: Vec<PathBuf>,
    },
    /// Reading or writing a file failed.
    #[error("{action} {}", .path.display())]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `--out` exists and holds something else than an image layout; it is not touched.
    #[error(
        "{}: exists and is not an OCI image layout (no `oci-layout` file); choose a new or empty directory, nothing was written",
        .path.display()
    )]
    NotALayout {
        /// The directory.
        path: PathBuf,
    },
    /// An image layout (ours or `docker save`'s) is not what it should be.
    #[error("{}: {problem}", .path.display())]
    InvalidLayout {
        /// The file of the layout at fault.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `--repository` is not `host[:port]/path`.
    #[error("repository `{value}`: {problem}")]
    InvalidRepository {
        /// As given.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// The repository does not exist (ECR needs it created first).
    #[error(
        "{repository}: the registry has no such repository ({detail}); on ECR it must exist first (`deployer up` creates it in the toolkit stack)"
    )]
    RepositoryNotFound {
        /// The repository.
        repository: String,
        /// The registry's message.
        detail: String,
    },
    /// The registry refused the credentials.
    #[error("{registry}: the registry refused access while {operation} ({detail}); {hint}")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// What we were doing.
        operation: String,
        /// The registry's message.
        detail: String,
        /// What to check, from where the credentials came.
        hint: String,
    },
    /// Any other registry failure.
    #[error("{registry}: {operation} failed: {detail}")]
    Registry {
        /// The registry host.
        registry: String,
        /// What we were doing.
        operation: String,
        /// The registry's or the connection's message.
        detail: String,
    },
    /// Credentials could not be read or were incomplete.
    #[error("registry credentials: {0}")]
    Credentials(String),
    /// `ecr:GetAuthorizationToken` failed or answered something unusable.
    #[error("ECR authorization for {registry}: {detail}")]
    Ecr {
        /// The registry host.
        registry: String,
        /// The cause, with the SDK's error context.
        detail: String,
    },
}

impl ImageError {
    fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    #[test]
    fn platform_names() {
        let check = |text: &str, expected: Option<Platform>| {
            assert_eq!(text.parse::<Platform>().ok(), expected, "{text}");
        };
        check("X86_64", Some(Platform::X86_64));
        check("amd64", Some(Platform::X86_64));
        check("linux/amd64", Some(Platform::X86_64));
        check("ARM64", Some(Platform::Arm64));
        check("aarch64", Some(Platform::Arm64));
        check("linux/arm64", Some(Platform::Arm64));
        check("riscv64", None);
        check("", None);
    }

    #[test]
    fn platform_of_our_app_stack_is_its_task_definition() {
        let stacks = stacks::synth_all(&stacks::StackConfig::default()).unwrap();
        let app = stacks
            .iter()
            .find(|stack| stack.kind == stacks::StackKind::App)
            .unwrap();
        let template = app.template.to_json_value();
        assert_eq!(
            Platform::of_task_definition(&template),
            Some(Platform::X86_64)
        );
        let network = stacks
            .iter()
            .find(|stack| stack.kind == stacks::StackKind::Network)
            .unwrap();
        assert_eq!(
            Platform::of_task_definition(&network.template.to_json_value()),
            None
        );
    }

    #[test]
    fn platform_of_a_task_definition_without_runtime_platform_is_ecs_default() {
        let template = serde_json::json!({"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition", "Properties": {}}}});
        assert_eq!(
            Platform::of_task_definition(&template),
            Some(Platform::X86_64)
        );
        let template = serde_json::json!({"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"RuntimePlatform": {"CpuArchitecture": "ARM64"}}}}});
        assert_eq!(
            Platform::of_task_definition(&template),
            Some(Platform::Arm64)
        );
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let auth = RegistryAuth::Basic {
            username: "AWS".into(),
            password: SecretString::from("hunter2-token"),
        };
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("AWS") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
