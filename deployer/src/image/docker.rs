//! The Docker builder (`--builder docker`): `docker build` on `app/llm-eval/Dockerfile` for the task's
//! platform, then `docker save`, and the saved image re-laid as our OCI layout so the same
//! `push` (credentials, skipping what the registry has, digest tags) serves both builders.
//!
//! `docker save` writes an OCI layout in a tar since Docker 25 and the older `manifest.json`
//! format before; both are read. Layers it saved uncompressed are gzip-compressed (their diff
//! ids do not change). Docker builds are not reproducible the way the native ones are (base
//! image updates, timestamps), which docs/image.md says.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

use super::layout::{self, Descriptor};
use super::process::{self, Stderr};
use super::{BuildOptions, BuiltImage, ImageError, Platform};

/// A cold multi-stage build compiles the whole workspace.
const BUILD_LIMIT: Duration = Duration::from_secs(90 * 60);
/// `docker version` answers at once when the daemon is up.
const PROBE_LIMIT: Duration = Duration::from_secs(30);
/// `docker save` of a ~30 MB image.
const SAVE_LIMIT: Duration = Duration::from_secs(10 * 60);
/// The local tag of the built image.
const LOCAL_TAG: &str = "llm-eval:deployer-build";

/// Builds with Docker; see the module docs.
pub fn build(options: &BuildOptions) -> Result<BuiltImage, ImageError> {
    if options.binary.is_some() {
        return Err(ImageError::Command {
            command: "docker build".to_owned(),
            problem: "cannot pack a given --binary: the Docker builder compiles inside app/llm-eval/Dockerfile (drop --binary, or use the native builder)".to_owned(),
        });
    }
    let dockerfile = options.workspace.join("app/llm-eval/Dockerfile");
    if !dockerfile.is_file() {
        return Err(ImageError::Io {
            action: "reading",
            path: dockerfile,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    probe_daemon()?;
    layout::prepare(&options.out_dir)?;
    let mut build = Command::new("docker");
    build
        .arg("build")
        .arg("--platform")
        .arg(format!("linux/{}", options.platform.oci_architecture()))
        .arg("--file")
        .arg(&dockerfile)
        .arg("--tag")
        .arg(LOCAL_TAG)
        .arg(&options.workspace);
    process::run(&mut build, None, Stderr::Inherit, BUILD_LIMIT)?;
    let archive = options.out_dir.join("docker-save.tar");
    let mut save = Command::new("docker");
    save.arg("save")
        .arg("--output")
        .arg(&archive)
        .arg(LOCAL_TAG);
    process::run(&mut save, None, Stderr::Capture, SAVE_LIMIT)?;
    let image = import(&archive, options.platform, &options.out_dir);
    let _ = fs::remove_file(&archive);
    image
}

/// Checks that `docker` is installed and its daemon answers.
fn probe_daemon() -> Result<(), ImageError> {
    let mut command = Command::new("docker");
    command.args(["version", "--format", "{{.Server.Version}}"]);
    match process::run(&mut command, None, Stderr::Capture, PROBE_LIMIT) {
        Ok(_) => Ok(()),
        Err(ImageError::Command { problem, .. }) if problem.contains("program not found") => {
            Err(ImageError::Command {
                command: "docker".to_owned(),
                problem: "is not installed (no `docker` on PATH): the Docker builder needs Docker with a running daemon; the native builder (the default) needs neither".to_owned(),
            })
        }
        Err(ImageError::Command { problem, .. }) => Err(ImageError::Command {
            command: "docker version".to_owned(),
            problem: format!(
                "cannot reach the Docker daemon ({problem}); start Docker, or use the native builder (the default), which needs no daemon"
            ),
        }),
        Err(other) => Err(other),
    }
}

/// Re-lays the image of a `docker save` archive as our layout in `out_dir`.
pub fn import(
    archive: &Path,
    platform: Platform,
    out_dir: &Path,
) -> Result<BuiltImage, ImageError> {
    layout::prepare(out_dir)?;
    let staging = out_dir.join("docker-save");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(ImageError::io("removing", &staging))?;
    }
    let unpacked = unpack(archive, &staging);
    let image = unpacked.and_then(|()| {
        if staging.join("index.json").is_file() {
            from_oci(&staging, platform, out_dir)
        } else {
            from_legacy(&staging, platform, out_dir)
        }
    });
    let _ = fs::remove_dir_all(&staging);
    image
}

fn unpack(archive: &Path, staging: &Path) -> Result<(), ImageError> {
    let file = File::open(archive).map_err(ImageError::io("reading", archive))?;
    fs::create_dir_all(staging).map_err(ImageError::io("creating", staging))?;
    // `unpack` refuses entries that would land outside `staging` (`..`, absolute paths).
    tar::Archive::new(file)
        .unpack(staging)
        .map_err(ImageError::io("unpacking", archive))
}

/// Docker 25+: `index.json` → (an index per image →) the manifest for our platform.
fn from_oci(staging: &Path, platform: Platform, out_dir: &Path) -> Result<BuiltImage, ImageError> {
    let mut index_path = staging.join("index.json");
    let mut index = layout::read_json(&index_path)?;
    // Nested indexes (the containerd image store) are followed up to a small depth.
    for _ in 0..4 {
        let entries = index
            .get("manifests")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let mut chosen = None;
        for (entry_idx, entry) in entries.iter().enumerate() {
            let descriptor =
                layout::descriptor(entry, &index_path, &format!("manifests[{entry_idx}]"))?;
            let for_platform = entry
                .pointer("/platform/architecture")
                .and_then(Json::as_str)
                .is_none_or(|architecture| architecture == platform.oci_architecture());
            let present = descriptor.path_in(staging).is_file();
            if for_platform && present {
                chosen = Some(descriptor);
                break;
            }
        }
        let Some(chosen) = chosen else {
            return Err(layout::invalid(
                &index_path,
                format!(
                    "no image for linux/{} in the saved archive",
                    platform.oci_architecture()
                ),
            ));
        };
        let path = chosen.path_in(staging);
        match chosen.media_type.as_str() {
            layout::INDEX_MEDIA_TYPE | layout::DOCKER_LIST_MEDIA_TYPE => {
                index = layout::read_json(&path)?;
                index_path = path;
            }
            layout::MANIFEST_MEDIA_TYPE | layout::DOCKER_MANIFEST_MEDIA_TYPE => {
                let manifest = layout::read_json(&path)?;
                let config = layout::descriptor(
                    manifest.get("config").unwrap_or(&Json::Null),
                    &path,
                    "config",
                )?;
                let layers = manifest
                    .get("layers")
                    .and_then(Json::as_array)
                    .ok_or_else(|| layout::invalid(&path, "no `layers` list"))?
                    .iter()
                    .enumerate()
                    .map(|(layer_idx, value)| {
                        layout::descriptor(value, &path, &format!("layers[{layer_idx}]"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let layer_files = layers
                    .iter()
                    .map(|layer| (layer.path_in(staging), layer.media_type.clone()))
                    .collect();
                return relay(config.path_in(staging), layer_files, platform, out_dir);
            }
            other => {
                return Err(layout::invalid(
                    &path,
                    format!("unexpected media type `{other}`"),
                ));
            }
        }
    }
    Err(layout::invalid(
        &index_path,
        "image indexes nested too deep",
    ))
}

/// Docker before 25: `manifest.json` = `[{"Config": "<file>", "Layers": ["<dir>/layer.tar"]}]`.
fn from_legacy(
    staging: &Path,
    platform: Platform,
    out_dir: &Path,
) -> Result<BuiltImage, ImageError> {
    let manifest_path = staging.join("manifest.json");
    let manifest = layout::read_json(&manifest_path)?;
    let entry = manifest
        .as_array()
        .and_then(|entries| entries.first())
        .ok_or_else(|| layout::invalid(&manifest_path, "no image in the saved archive"))?;
    let inside = |relative: &str| -> Result<PathBuf, ImageError> {
        if relative.split('/').any(|part| part == "..") || relative.starts_with('/') {
            return Err(layout::invalid(
                &manifest_path,
                format!("path `{relative}` leaves the archive"),
            ));
        }
        Ok(staging.join(relative))
    };
    let config = entry
        .get("Config")
        .and_then(Json::as_str)
        .ok_or_else(|| layout::invalid(&manifest_path, "no `Config`"))?;
    let layers = entry
        .get("Layers")
        .and_then(Json::as_array)
        .ok_or_else(|| layout::invalid(&manifest_path, "no `Layers`"))?
        .iter()
        .map(|layer| {
            let relative = layer
                .as_str()
                .ok_or_else(|| layout::invalid(&manifest_path, "a layer is not a path"))?;
            Ok((inside(relative)?, "application/x-tar".to_owned()))
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    relay(inside(config)?, layers, platform, out_dir)
}

/// Writes the saved config and layers into `out_dir`, compressing what is not gzip.
fn relay(
    config_path: PathBuf,
    layers: Vec<(PathBuf, String)>,
    platform: Platform,
    out_dir: &Path,
) -> Result<BuiltImage, ImageError> {
    let config = layout::read_json(&config_path)?;
    let architecture = config
        .get("architecture")
        .and_then(Json::as_str)
        .unwrap_or_default();
    if architecture != platform.oci_architecture() {
        return Err(ImageError::ArchitectureMismatch {
            path: config_path,
            found: architecture.to_owned(),
            platform,
        });
    }
    let config_bytes = fs::read(&config_path).map_err(ImageError::io("reading", &config_path))?;
    let mut descriptors: Vec<Descriptor> = Vec::new();
    for (path, media_type) in layers {
        let descriptor = if media_type.ends_with("gzip") || is_gzip(&path)? {
            layout::adopt_blob(out_dir, &path, layout::LAYER_GZIP_MEDIA_TYPE)?
        } else if media_type.ends_with("zstd") {
            return Err(layout::invalid(
                &path,
                "zstd layers are not supported; build with gzip compression",
            ));
        } else {
            layout::compress_layer(out_dir, &path)?.0
        };
        descriptors.push(descriptor);
    }
    layout::finish(out_dir, platform, &config_bytes, descriptors)
}

fn is_gzip(path: &Path) -> Result<bool, ImageError> {
    use std::io::Read as _;
    let mut magic = [0u8; 2];
    let mut file = File::open(path).map_err(ImageError::io("reading", path))?;
    Ok(file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;
    use crate::image::layout::{Content, Layer, RunConfig};

    fn small_image(dir: &Path) -> BuiltImage {
        let mut layer = Layer::new("test");
        layer.file(
            "/usr/local/bin/hello",
            0o755,
            Content::Bytes(b"hello".to_vec()),
        );
        layout::write(
            dir,
            Platform::X86_64,
            &[layer],
            &RunConfig {
                user: "10001:10001".into(),
                env: vec!["PATH=/usr/local/bin".into()],
                entrypoint: vec!["/usr/local/bin/hello".into()],
                working_dir: "/".into(),
                exposed_ports: Vec::new(),
            },
        )
        .unwrap()
    }

    /// `docker save` archives made by skopeo, a real tool writing both formats: the OCI
    /// layout in a tar (Docker 25+) and the older `manifest.json` archive.
    #[test]
    fn imports_both_docker_save_formats() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        let original = small_image(&source);
        for (transport, file) in [("oci-archive", "oci.tar"), ("docker-archive", "docker.tar")] {
            let archive = dir.path().join(file);
            let status = Command::new("skopeo")
                .arg("copy")
                .arg(format!("oci:{}:{}", source.display(), layout::REF_NAME))
                .arg(format!("{transport}:{}:llm-eval:test", archive.display()))
                .stdout(std::process::Stdio::null())
                .status()
                .expect("skopeo runs (scripts/test.sh installs it)");
            assert!(status.success(), "{transport}");
            let out = dir.path().join(format!("out-{transport}"));
            let image = import(&archive, Platform::X86_64, &out).unwrap();
            assert_eq!(image.layers.len(), 1, "{transport}");
            assert_eq!(image.platform, Platform::X86_64);
            assert_eq!(BuiltImage::open(&out).unwrap(), image);
            assert!(!out.join("docker-save").exists());
            if transport == "oci-archive" {
                assert_eq!(
                    image.manifest_digest, original.manifest_digest,
                    "gzip layers kept as they are"
                );
            }
            let err = import(
                &archive,
                Platform::Arm64,
                &dir.path().join(format!("arm-{transport}")),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("ARM64") || err.contains("arm64"), "{err}");
        }
    }
}
