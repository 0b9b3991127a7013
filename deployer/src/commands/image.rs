//! `deployer image build | push`: the CLI over `crate::image` (flags, defaults, output).
//!
//! `build` prints a summary (or `--json`) on stdout; `push` prints progress on stderr and the
//! image URI by digest on stdout (or `--json`), so `IMAGE=$(deployer image push ...)` works.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretString;
use serde_json::json;

use crate::image::{self, BlobKind, BuiltImage, Platform, PushEvent, PushTarget, PushedImage};
use crate::outcome::{self, Outcome};
use crate::output::Stdout;

/// Default layout directory of `build` and `push`.
pub(crate) const DEFAULT_LAYOUT: &str = "cdk.out/image";

/// Arguments of `deployer image`.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// `deployer image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the app image (an OCI image layout) without a Docker daemon.
    Build(BuildArgs),
    /// Push an image layout to a registry (ECR or any registry v2).
    Push(PushArgs),
}

/// The image builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BuilderArg {
    /// Compile with cargo here and assemble the image without Docker.
    Native,
    /// `docker build` on app/llm-eval/Dockerfile (needs a running Docker daemon).
    Docker,
}

/// Arguments of `deployer image build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// OCI image layout directory to write (created; an earlier layout there is replaced).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_LAYOUT)]
    pub out: PathBuf,
    /// Pack this llm-eval binary instead of compiling one in release mode.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// CPU architecture (X86_64 or ARM64) [default: the app stack's task definition's].
    #[arg(long, value_name = "ARCH", value_parser = parse_platform)]
    pub platform: Option<Platform>,
    /// How to build.
    #[arg(long, value_enum, default_value = "native")]
    pub builder: BuilderArg,
    /// The workspace root [default: the nearest directory above holding app/Cargo.toml].
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `deployer image push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Repository to push to: HOST[:PORT]/PATH (an ECR repository URI, or any registry).
    #[arg(long, value_name = "URI", value_parser = parse_repository)]
    pub repository: String,
    /// The OCI image layout to push (what `deployer image build --out` wrote).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_LAYOUT)]
    pub layout: PathBuf,
    /// User for HTTP Basic auth; the password is read from REGISTRY_PASSWORD, never a flag.
    /// Without it: ECR's GetAuthorizationToken for ECR, else Docker's config.json.
    #[arg(long, value_name = "USER", env = "REGISTRY_USER")]
    pub registry_user: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_platform(value: &str) -> Result<Platform, String> {
    value.parse()
}

fn parse_repository(value: &str) -> Result<String, String> {
    image::Repository::parse(value)
        .map(|repository| repository.to_string())
        .map_err(|err| err.to_string())
}

/// Runs `deployer image ...`.
pub fn run(args: &ImageArgs, stdout: &mut Stdout) -> anyhow::Result<Outcome> {
    match &args.command {
        ImageCommand::Build(build) => run_build(build, stdout),
        ImageCommand::Push(push) => run_push(push, stdout),
    }
}

fn run_build(args: &BuildArgs, stdout: &mut Stdout) -> anyhow::Result<Outcome> {
    if args.builder == BuilderArg::Docker && args.binary.is_some() {
        return Err(outcome::usage(anyhow::anyhow!(
            "--binary packs a built binary natively; the Docker builder compiles inside app/llm-eval/Dockerfile (drop one of them)"
        )));
    }
    let platform = match args.platform {
        Some(platform) => platform,
        None => app_stack_platform()?,
    };
    let workspace = match (&args.workspace, &args.binary) {
        (Some(workspace), _) => workspace.clone(),
        (None, Some(_)) => PathBuf::from("."),
        (None, None) => find_workspace()?,
    };
    let options = image::BuildOptions {
        binary: args.binary.clone(),
        platform,
        out_dir: args.out.clone(),
        workspace,
        builder: match args.builder {
            BuilderArg::Native => image::Builder::Native,
            BuilderArg::Docker => image::Builder::Docker,
        },
    };
    let built = image::build(&options).context("building the image")?;
    let text = if args.json {
        format!("{}\n", build_json(&built))
    } else {
        format!(
            "image     {} (OCI image layout)\nmanifest  {}\nplatform  {}\nsize      {} compressed in {} layers\n",
            built.layout_dir.display(),
            built.manifest_digest,
            built.platform,
            human_bytes(built.compressed_size),
            built.layers.len()
        )
    };
    stdout.print(text)?;
    Ok(Outcome::Done)
}

fn build_json(built: &BuiltImage) -> serde_json::Value {
    json!({
        "layout_dir": built.layout_dir,
        "manifest_digest": built.manifest_digest,
        "config_digest": built.config_digest,
        "platform": built.platform.cpu_architecture(),
        "compressed_size": built.compressed_size,
        "layers": built.layers.iter().map(|layer| json!({"digest": layer.digest, "size": layer.size})).collect::<Vec<_>>(),
    })
}

/// The CPU architecture of the task definition our app stack synthesizes.
fn app_stack_platform() -> anyhow::Result<Platform> {
    let stacks = stacks::synth_all(&stacks::StackConfig::default())
        .context("synthesizing the app stack to read its runtime platform")?;
    stacks
        .iter()
        .find(|stack| stack.kind == stacks::StackKind::App)
        .and_then(|stack| Platform::of_task_definition(&stack.template.to_json_value()))
        .context(
            "the app stack has no task definition with a known CPU architecture; pass --platform",
        )
}

/// The nearest directory at or above the current one that holds `app/llm-eval/Cargo.toml` and
/// a workspace `Cargo.toml`.
pub(crate) fn find_workspace() -> anyhow::Result<PathBuf> {
    let start = std::env::current_dir().context("reading the current directory")?;
    for dir in start.ancestors() {
        let is_workspace = std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.contains("[workspace]"))
            && dir.join("app/llm-eval/Cargo.toml").is_file();
        if is_workspace {
            return Ok(dir.to_owned());
        }
    }
    Err(outcome::usage(anyhow::anyhow!(
        "{} is not inside the llm-eval workspace: run from the repository, or pass --workspace DIR or --binary PATH",
        start.display()
    )))
}

fn run_push(args: &PushArgs, stdout: &mut Stdout) -> anyhow::Result<Outcome> {
    let built = BuiltImage::open(&args.layout).context("reading the image layout")?;
    let repository = image::Repository::parse(&args.repository)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pushed = runtime.block_on(async {
        let auth = resolve_auth(args, &repository.host).await?;
        let target = PushTarget {
            repository: repository.to_string(),
            auth,
        };
        let n_layers = built.layers.len();
        image::push(&built, &target, |event| report(&event, n_layers))
            .await
            .with_context(|| format!("pushing to {repository}"))
    })?;
    print_pushed(&pushed, args.json, stdout)?;
    Ok(Outcome::Done)
}

/// `--registry-user` with `REGISTRY_PASSWORD`, else ECR's token for ECR, else Docker's config.
async fn resolve_auth(args: &PushArgs, host: &str) -> anyhow::Result<image::RegistryAuth> {
    let password = std::env::var("REGISTRY_PASSWORD")
        .ok()
        .filter(|password| !password.is_empty());
    match (&args.registry_user, password) {
        (Some(user), Some(password)) => {
            return Ok(image::registry_auth(
                host,
                Some((user.clone(), SecretString::from(password))),
            )?);
        }
        (Some(user), None) => {
            return Err(outcome::usage(anyhow::anyhow!(
                "--registry-user {user} needs the password in REGISTRY_PASSWORD (never on the command line)"
            )));
        }
        (None, Some(_)) => {
            return Err(outcome::usage(anyhow::anyhow!(
                "REGISTRY_PASSWORD is set but --registry-user (REGISTRY_USER) is not"
            )));
        }
        (None, None) => {}
    }
    if image::ecr::is_ecr_host(host) {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        return Ok(image::ecr_auth(&config, host).await?);
    }
    Ok(image::registry_auth(host, None)?)
}

pub(crate) fn report(event: &PushEvent, n_layers: usize) {
    let name = |kind: &BlobKind| match kind {
        BlobKind::Layer(layer_idx) => format!("layer {}/{n_layers}", layer_idx + 1),
        BlobKind::Config => "config".to_owned(),
    };
    match event {
        PushEvent::BlobExists { kind, digest, size } => {
            eprintln!(
                "{} {} ({}): already in the registry",
                name(kind),
                short(digest),
                human_bytes(*size)
            );
        }
        PushEvent::BlobUploading { kind, digest, size } => {
            eprintln!(
                "{} {} ({}): uploading",
                name(kind),
                short(digest),
                human_bytes(*size)
            );
        }
        PushEvent::BlobUploaded { kind, digest, .. } => {
            eprintln!("{} {}: uploaded", name(kind), short(digest));
        }
        PushEvent::ManifestExists { tag, .. } => {
            eprintln!("manifest: already in the registry as {tag}");
        }
        PushEvent::ManifestUploaded { tag, .. } => eprintln!("manifest: uploaded as {tag}"),
    }
}

fn print_pushed(pushed: &PushedImage, as_json: bool, stdout: &mut Stdout) -> anyhow::Result<()> {
    if as_json {
        let summary = json!({
                "uri_by_digest": pushed.uri_by_digest,
                "digest": pushed.digest,
                "tag": pushed.tag,
                "n_blobs_uploaded": pushed.n_blobs_uploaded,
                "n_bytes_uploaded": pushed.n_bytes_uploaded,
                "manifest_uploaded": pushed.manifest_uploaded,
        });
        return stdout.print(format!("{summary}\n"));
    }
    eprintln!(
        "pushed: {} blobs uploaded ({}), manifest {}",
        pushed.n_blobs_uploaded,
        human_bytes(pushed.n_bytes_uploaded),
        if pushed.manifest_uploaded {
            "uploaded"
        } else {
            "unchanged"
        }
    );
    stdout.print(format!("{}\n", pushed.uri_by_digest))
}

/// `sha256:0123456789ab…` for progress lines.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min("sha256:".len() + 12)]
}

/// `23.4 MB` (decimal units, as registries show sizes).
fn human_bytes(n_bytes: u64) -> String {
    match n_bytes {
        0..1_000 => format!("{n_bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", n_bytes as f64 / 1e3),
        _ => format!("{:.1} MB", n_bytes as f64 / 1e6),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 kB");
        assert_eq!(human_bytes(23_456_789), "23.5 MB");
    }

    #[test]
    fn workspace_is_found_from_here() {
        let workspace = find_workspace().unwrap();
        assert!(
            workspace.join("app/llm-eval/Dockerfile").is_file(),
            "{}",
            workspace.display()
        );
    }
}
