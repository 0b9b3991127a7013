//! The OCI image layout on disk: deterministic tar+gzip layers, the image config, the manifest
//! and `index.json`, and reading such a layout back.
//!
//! Determinism is what makes "the same binary gives the same digest" true: layer entries are
//! written in path order, every entry has mtime 0, numeric owners and no user or group names,
//! gzip headers carry no time or file name, and the JSON documents are built in a fixed key
//! order with no creation time. Blobs are written to a temporary file and renamed to their
//! digest, so an interrupted build never leaves a blob whose name does not match its content.
//! A layout directory holds one image: blobs the new index does not reference are removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use super::{BuiltImage, ImageError, Platform};

/// OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's manifest (what `docker save` may reference).
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// gzip-compressed tar layer.
pub const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker's gzip layer (same bytes as OCI's).
pub const DOCKER_LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The `org.opencontainers.image.ref.name` of our image in `index.json` (`umoci unpack
/// --image DIR:llm-eval`, `skopeo copy oci:DIR:llm-eval ...`).
pub const REF_NAME: &str = "llm-eval";

/// Largest JSON document (index, manifest, config) read from a layout; real ones are a few KB.
const MAX_JSON: u64 = 4 << 20;

/// gzip level of the layers: 9 saves about 3 % over 6 on the release binary for about twice
/// the time; 6 keeps `deployer up` quick.
const GZIP_LEVEL: u32 = 6;

/// A content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl Descriptor {
    fn to_json(&self) -> Json {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }

    /// The blob's file in `layout_dir`.
    pub fn path_in(&self, layout_dir: &Path) -> PathBuf {
        blob_path(layout_dir, &self.digest)
    }
}

fn blob_path(layout_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    layout_dir.join("blobs").join("sha256").join(hex)
}

/// What a layer file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Given bytes (`/etc/passwd`).
    Bytes(Vec<u8>),
    /// A file on this machine, read when the layer is written (symlinks followed).
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File(Content),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    node: Node,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// The files of one layer, kept in path order. Parent directories are added as
/// `root:root 0755` unless given explicitly.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
    /// `history.created_by` of the layer in the image config.
    pub created_by: String,
}

impl Layer {
    /// An empty layer described by `created_by`.
    pub fn new(created_by: &str) -> Layer {
        Layer {
            entries: BTreeMap::new(),
            created_by: created_by.to_owned(),
        }
    }

    /// A directory owned by `uid:gid`.
    pub fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) {
        let key = relative(path);
        self.parents(&key);
        self.entries.insert(
            key,
            Entry {
                node: Node::Dir,
                mode,
                uid,
                gid,
            },
        );
    }

    /// A regular file owned by root.
    pub fn file(&mut self, path: &str, mode: u32, content: Content) {
        let key = relative(path);
        self.parents(&key);
        self.entries.insert(
            key,
            Entry {
                node: Node::File(content),
                mode,
                uid: 0,
                gid: 0,
            },
        );
    }

    fn parents(&mut self, key: &str) {
        let mut end = 0;
        while let Some(slash) = key[end..].find('/') {
            end += slash;
            self.entries.entry(key[..end].to_owned()).or_insert(Entry {
                node: Node::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
            end += 1;
        }
    }
}

/// `/usr/local/bin/x` → `usr/local/bin/x`; tar entries of images are relative.
fn relative(path: &str) -> String {
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

/// The runtime configuration of the image (OCI config `config`).
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// `uid:gid`.
    pub user: String,
    /// `NAME=value`, in this order.
    pub env: Vec<String>,
    /// Exec form.
    pub entrypoint: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// `8080/tcp`.
    pub exposed_ports: Vec<String>,
}

/// Writes the image of `layers` and `run` into the layout at `out_dir`.
///
/// When `out_dir` already holds the image of exactly these inputs (same file contents, modes,
/// owners and config: see [`fingerprint`]) and its blobs are intact, that image is returned
/// without compressing anything again, which makes a no-change `deployer up` quick.
pub fn write(
    out_dir: &Path,
    platform: Platform,
    layers: &[Layer],
    run: &RunConfig,
) -> Result<BuiltImage, ImageError> {
    let inputs = fingerprint(platform, layers, run)?;
    if let Some(image) = reuse(out_dir, &inputs) {
        return Ok(image);
    }
    prepare(out_dir)?;
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let (descriptor, diff_id) = write_layer(out_dir, layer)?;
        descriptors.push(descriptor);
        diff_ids.push(diff_id);
    }
    let exposed: serde_json::Map<String, Json> = run
        .exposed_ports
        .iter()
        .map(|port| (port.clone(), json!({})))
        .collect();
    let history: Vec<Json> = layers
        .iter()
        .map(|layer| json!({"created_by": layer.created_by}))
        .collect();
    // No `created`: a creation time would make every build a different image.
    let config = json!({
        "architecture": platform.oci_architecture(),
        "os": "linux",
        "config": {
            "User": run.user,
            "ExposedPorts": exposed,
            "Env": run.env,
            "Entrypoint": run.entrypoint,
            "WorkingDir": run.working_dir,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let config_bytes = serde_json::to_vec(&config).map_err(json_error(out_dir))?;
    let image = finish(out_dir, platform, &config_bytes, descriptors)?;
    let record = json!({"inputs": inputs, "manifest": image.manifest_digest});
    let record_bytes = serde_json::to_vec(&record).map_err(json_error(out_dir))?;
    write_atomically(&out_dir.join(INPUTS_FILE), &record_bytes)?;
    Ok(image)
}

/// Records which inputs made the layout's image (an extra file, which OCI layouts allow).
const INPUTS_FILE: &str = "deployer-inputs.json";

/// Bumped whenever the way inputs become blobs changes, so an old layout is never reused.
const LAYOUT_FORMAT: &str = "deployer-layout-1";

/// A digest of everything that determines the image: the layout format, gzip level, platform,
/// run config and, per layer, each entry's path, kind, mode, owner and content digest.
pub fn fingerprint(
    platform: Platform,
    layers: &[Layer],
    run: &RunConfig,
) -> Result<String, ImageError> {
    let mut hashing = Hashing::new(io::sink());
    let mut line = |text: &str| {
        // Writing to a sink cannot fail.
        let _ = hashing.write_all(text.as_bytes());
        let _ = hashing.write_all(b"\n");
    };
    line(LAYOUT_FORMAT);
    line(&GZIP_LEVEL.to_string());
    line(platform.oci_architecture());
    line(&format!("{run:?}"));
    for layer in layers {
        line(&format!("layer {}", layer.created_by));
        for (path, entry) in &layer.entries {
            let content = match &entry.node {
                Node::Dir => "dir".to_owned(),
                Node::File(Content::Bytes(bytes)) => {
                    format!("bytes {}", hex::encode(Sha256::digest(bytes)))
                }
                Node::File(Content::File(source)) => format!("file {}", digest_file(source)?.0),
            };
            line(&format!(
                "{path} {:o} {}:{} {content}",
                entry.mode, entry.uid, entry.gid
            ));
        }
    }
    Ok(hashing.finish().1)
}

/// The image already in `out_dir` when it was made from `inputs` and every blob is intact.
fn reuse(out_dir: &Path, inputs: &str) -> Option<BuiltImage> {
    let record = read_json(&out_dir.join(INPUTS_FILE)).ok()?;
    if record.get("inputs").and_then(Json::as_str) != Some(inputs) {
        return None;
    }
    let image = open(out_dir).ok()?;
    if record.get("manifest").and_then(Json::as_str) != Some(image.manifest_digest.as_str()) {
        return None;
    }
    let intact = image
        .layers
        .iter()
        .chain(std::iter::once(&image.config))
        .all(|blob| {
            digest_file(&blob.path_in(out_dir)).is_ok_and(|(digest, _)| digest == blob.digest)
        });
    intact.then_some(image)
}

/// Writes the config blob, the manifest and `index.json` for layers already in `out_dir`,
/// then removes every blob the image does not use.
pub fn finish(
    out_dir: &Path,
    platform: Platform,
    config_bytes: &[u8],
    layers: Vec<Descriptor>,
) -> Result<BuiltImage, ImageError> {
    // Whatever wrote this layout before, its inputs record no longer describes it.
    match fs::remove_file(out_dir.join(INPUTS_FILE)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => {
            return Err(ImageError::io("removing", out_dir.join(INPUTS_FILE))(err));
        }
        _ => {}
    }
    let config = write_blob(out_dir, CONFIG_MEDIA_TYPE, config_bytes)?;
    let layer_json: Vec<Json> = layers.iter().map(Descriptor::to_json).collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.to_json(),
        "layers": layer_json,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(json_error(out_dir))?;
    let manifest_blob = write_blob(out_dir, MANIFEST_MEDIA_TYPE, &manifest_bytes)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_blob.digest,
            "size": manifest_blob.size,
            "platform": {"architecture": platform.oci_architecture(), "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": REF_NAME},
        }],
    });
    let index_bytes = serde_json::to_vec(&index).map_err(json_error(out_dir))?;
    write_atomically(
        &out_dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_atomically(&out_dir.join("index.json"), &index_bytes)?;
    let mut keep: Vec<&str> = layers.iter().map(|layer| layer.digest.as_str()).collect();
    keep.push(&config.digest);
    keep.push(&manifest_blob.digest);
    remove_unused_blobs(out_dir, &keep)?;
    let compressed_size = layers.iter().map(|layer| layer.size).sum();
    Ok(BuiltImage {
        layout_dir: out_dir.to_owned(),
        manifest_digest: manifest_blob.digest,
        manifest_size: manifest_blob.size,
        manifest_media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        config_digest: config.digest.clone(),
        config,
        layers,
        platform,
        compressed_size,
    })
}

/// Creates `out_dir` (and `blobs/sha256`), refusing a directory that holds anything but an
/// image layout: nothing the user put there is overwritten.
pub fn prepare(out_dir: &Path) -> Result<(), ImageError> {
    match fs::metadata(out_dir) {
        Ok(metadata) if !metadata.is_dir() => {
            return Err(ImageError::NotALayout {
                path: out_dir.to_owned(),
            });
        }
        Ok(_) => {
            let is_layout = out_dir.join("oci-layout").is_file();
            let mut children = fs::read_dir(out_dir).map_err(ImageError::io("reading", out_dir))?;
            if !is_layout && children.next().is_some() {
                return Err(ImageError::NotALayout {
                    path: out_dir.to_owned(),
                });
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(ImageError::io("reading", out_dir)(err)),
    }
    let blobs = out_dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(ImageError::io("creating", &blobs))?;
    Ok(())
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    n_bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            n_bytes: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.n_bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let n_written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..n_written]);
        self.n_bytes += n_written as u64;
        Ok(n_written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A blob being written to a temporary file, renamed to its digest by [`PendingBlob::commit`].
struct PendingBlob {
    temp_path: PathBuf,
    out_dir: PathBuf,
}

impl PendingBlob {
    fn create(out_dir: &Path) -> Result<(PendingBlob, File), ImageError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N_TEMP: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            ".tmp-{}-{}",
            std::process::id(),
            N_TEMP.fetch_add(1, Ordering::Relaxed)
        );
        let temp_path = out_dir.join("blobs").join("sha256").join(name);
        let file = File::create(&temp_path).map_err(ImageError::io("creating", &temp_path))?;
        Ok((
            PendingBlob {
                temp_path,
                out_dir: out_dir.to_owned(),
            },
            file,
        ))
    }

    fn commit(self, digest: &str) -> Result<PathBuf, ImageError> {
        let path = blob_path(&self.out_dir, digest);
        fs::rename(&self.temp_path, &path).map_err(ImageError::io("writing", &path))?;
        Ok(path)
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        // After a commit the temporary name is gone; after a failure it is removed here.
        let _ = fs::remove_file(&self.temp_path);
    }
}

/// Writes `bytes` as a blob.
pub fn write_blob(
    out_dir: &Path,
    media_type: &str,
    bytes: &[u8],
) -> Result<Descriptor, ImageError> {
    let (pending, file) = PendingBlob::create(out_dir)?;
    let mut writer = Hashing::new(BufWriter::new(file));
    writer
        .write_all(bytes)
        .map_err(ImageError::io("writing", &pending.temp_path))?;
    let (buffered, digest, size) = writer.finish();
    finish_file(buffered, &pending.temp_path)?;
    pending.commit(&digest)?;
    Ok(Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
    })
}

fn finish_file(buffered: BufWriter<File>, path: &Path) -> Result<(), ImageError> {
    let file = buffered
        .into_inner()
        .map_err(|err| ImageError::io("writing", path)(err.into_error()))?;
    file.sync_all().map_err(ImageError::io("writing", path))
}

/// Writes one layer as a gzip blob; returns it and its diff id (digest of the tar).
fn write_layer(out_dir: &Path, layer: &Layer) -> Result<(Descriptor, String), ImageError> {
    let (pending, file) = PendingBlob::create(out_dir)?;
    let temp = pending.temp_path.clone();
    let gzip = GzBuilder::new().write(
        Hashing::new(BufWriter::new(file)),
        Compression::new(GZIP_LEVEL),
    );
    let mut tar = tar::Builder::new(Hashing::new(gzip));
    for (path, entry) in &layer.entries {
        append(&mut tar, path, entry).map_err(|err| match err {
            Appended::Source(source_path, source) => ImageError::Io {
                action: "reading",
                path: source_path,
                source,
            },
            Appended::Sink(source) => ImageError::io("writing", &temp)(source),
        })?;
    }
    let hashed_tar = tar.into_inner().map_err(ImageError::io("writing", &temp))?;
    let (gzip, diff_id, _) = hashed_tar.finish();
    let hashed_gzip = gzip.finish().map_err(ImageError::io("writing", &temp))?;
    let (buffered, digest, size) = hashed_gzip.finish();
    finish_file(buffered, &temp)?;
    pending.commit(&digest)?;
    Ok((
        Descriptor {
            media_type: LAYER_GZIP_MEDIA_TYPE.to_owned(),
            digest,
            size,
        },
        diff_id,
    ))
}

/// Compresses an uncompressed tar layer (from `docker save`) into a gzip blob; its diff id is
/// the digest of the tar as read.
pub fn compress_layer(out_dir: &Path, tar_path: &Path) -> Result<(Descriptor, String), ImageError> {
    let (pending, file) = PendingBlob::create(out_dir)?;
    let temp = pending.temp_path.clone();
    let mut gzip = Hashing::new(GzBuilder::new().write(
        Hashing::new(BufWriter::new(file)),
        Compression::new(GZIP_LEVEL),
    ));
    let mut source = File::open(tar_path).map_err(ImageError::io("reading", tar_path))?;
    io::copy(&mut source, &mut gzip).map_err(ImageError::io("compressing", tar_path))?;
    let (gzip, diff_id, _) = gzip.finish();
    let (buffered, digest, size) = gzip
        .finish()
        .map_err(ImageError::io("writing", &temp))?
        .finish();
    finish_file(buffered, &temp)?;
    pending.commit(&digest)?;
    Ok((
        Descriptor {
            media_type: LAYER_GZIP_MEDIA_TYPE.to_owned(),
            digest,
            size,
        },
        diff_id,
    ))
}

/// Moves a file that already holds a blob into the layout under its digest (checked).
pub fn adopt_blob(
    out_dir: &Path,
    source: &Path,
    media_type: &str,
) -> Result<Descriptor, ImageError> {
    let (digest, size) = digest_file(source)?;
    let path = blob_path(out_dir, &digest);
    if fs::rename(source, &path).is_err() {
        fs::copy(source, &path).map_err(ImageError::io("writing", &path))?;
    }
    Ok(Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
    })
}

/// The sha256 digest and size of a file, read in pieces.
pub fn digest_file(path: &Path) -> Result<(String, u64), ImageError> {
    let mut file = File::open(path).map_err(ImageError::io("reading", path))?;
    let mut hashing = Hashing::new(io::sink());
    io::copy(&mut file, &mut hashing).map_err(ImageError::io("reading", path))?;
    let (_, digest, size) = hashing.finish();
    Ok((digest, size))
}

enum Appended {
    Source(PathBuf, io::Error),
    Sink(io::Error),
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, entry: &Entry) -> Result<(), Appended> {
    let mut header = tar::Header::new_ustar();
    header.set_mode(entry.mode);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(0);
    match &entry.node {
        Node::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            header
                .set_path(format!("{path}/"))
                .map_err(Appended::Sink)?;
            header.set_cksum();
            tar.append(&header, io::empty()).map_err(Appended::Sink)
        }
        Node::File(Content::Bytes(bytes)) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_path(path).map_err(Appended::Sink)?;
            header.set_cksum();
            tar.append(&header, bytes.as_slice())
                .map_err(Appended::Sink)
        }
        Node::File(Content::File(source)) => {
            let file = File::open(source).map_err(|err| Appended::Source(source.clone(), err))?;
            let size = file
                .metadata()
                .map_err(|err| Appended::Source(source.clone(), err))?
                .len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            header.set_path(path).map_err(Appended::Sink)?;
            header.set_cksum();
            // `take` guards against a file that grows while it is read; one that shrinks makes
            // `append` fail, which is right: the layer would not be what the header says.
            tar.append(&header, file.take(size)).map_err(Appended::Sink)
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let temp = path.with_extension("tmp");
    let mut file = File::create(&temp).map_err(ImageError::io("writing", &temp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(ImageError::io("writing", &temp))?;
    fs::rename(&temp, path).map_err(ImageError::io("writing", path))
}

fn remove_unused_blobs(out_dir: &Path, keep: &[&str]) -> Result<(), ImageError> {
    let blobs = out_dir.join("blobs").join("sha256");
    let entries = fs::read_dir(&blobs).map_err(ImageError::io("reading", &blobs))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_blob_name = name.len() == 64 && name.bytes().all(|byte| byte.is_ascii_hexdigit());
        if is_blob_name && !keep.iter().any(|digest| digest.ends_with(&name)) {
            let path = entry.path();
            fs::remove_file(&path).map_err(ImageError::io("removing", &path))?;
        }
    }
    Ok(())
}

fn json_error(out_dir: &Path) -> impl Fn(serde_json::Error) -> ImageError + '_ {
    move |err| ImageError::InvalidLayout {
        path: out_dir.to_owned(),
        problem: format!("could not encode JSON: {err}"),
    }
}

/// Reads a JSON document of at most [`MAX_JSON`] bytes.
pub fn read_json(path: &Path) -> Result<Json, ImageError> {
    let file = File::open(path).map_err(ImageError::io("reading", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_JSON + 1)
        .read_to_end(&mut bytes)
        .map_err(ImageError::io("reading", path))?;
    if bytes.len() as u64 > MAX_JSON {
        return Err(invalid(path, format!("larger than {MAX_JSON} bytes")));
    }
    serde_json::from_slice(&bytes).map_err(|err| invalid(path, format!("invalid JSON: {err}")))
}

pub fn invalid(path: &Path, problem: impl Into<String>) -> ImageError {
    ImageError::InvalidLayout {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Parses a descriptor object (`mediaType`, `digest`, `size`).
pub fn descriptor(value: &Json, path: &Path, field: &str) -> Result<Descriptor, ImageError> {
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Json::as_str)
            .ok_or_else(|| invalid(path, format!("{field}: no `{key}`")))
    };
    let media_type = text("mediaType")?.to_owned();
    let digest = text("digest")?.to_owned();
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| invalid(path, format!("{field}: digest `{digest}` is not sha256")))?;
    if hex.len() != 64 || !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid(
            path,
            format!("{field}: malformed digest `{digest}`"),
        ));
    }
    let size = value
        .get("size")
        .and_then(Json::as_u64)
        .ok_or_else(|| invalid(path, format!("{field}: no `size`")))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
    })
}

/// Checks that a blob file is there with the size its descriptor says.
fn check_blob(layout_dir: &Path, descriptor: &Descriptor) -> Result<(), ImageError> {
    let path = descriptor.path_in(layout_dir);
    let metadata = fs::metadata(&path).map_err(ImageError::io("reading", &path))?;
    if metadata.len() != descriptor.size {
        return Err(invalid(
            &path,
            format!(
                "{} bytes, the manifest says {}",
                metadata.len(),
                descriptor.size
            ),
        ));
    }
    Ok(())
}

/// Reads the one image of a layout; see [`BuiltImage::open`].
pub fn open(layout_dir: &Path) -> Result<BuiltImage, ImageError> {
    let marker = layout_dir.join("oci-layout");
    if !marker.is_file() {
        return Err(invalid(
            layout_dir,
            "not an OCI image layout (no `oci-layout` file); run `deployer image build` first",
        ));
    }
    let version = read_json(&marker)?;
    if version.get("imageLayoutVersion").and_then(Json::as_str) != Some("1.0.0") {
        return Err(invalid(&marker, "imageLayoutVersion is not 1.0.0"));
    }
    let index_path = layout_dir.join("index.json");
    let index = read_json(&index_path)?;
    let manifests = index
        .get("manifests")
        .and_then(Json::as_array)
        .ok_or_else(|| invalid(&index_path, "no `manifests` list"))?;
    let [entry] = manifests.as_slice() else {
        return Err(invalid(
            &index_path,
            format!("holds {} images; expected exactly one", manifests.len()),
        ));
    };
    let manifest = descriptor(entry, &index_path, "manifests[0]")?;
    if manifest.media_type != MANIFEST_MEDIA_TYPE {
        return Err(invalid(
            &index_path,
            format!(
                "manifests[0] is a `{}`, not an OCI image manifest",
                manifest.media_type
            ),
        ));
    }
    let manifest_path = manifest.path_in(layout_dir);
    check_blob(layout_dir, &manifest)?;
    let (actual, _) = digest_file(&manifest_path)?;
    if actual != manifest.digest {
        return Err(invalid(
            &manifest_path,
            format!("content digest is {actual}"),
        ));
    }
    let manifest_json = read_json(&manifest_path)?;
    let config = descriptor(
        manifest_json.get("config").unwrap_or(&Json::Null),
        &manifest_path,
        "config",
    )?;
    let layer_values = manifest_json
        .get("layers")
        .and_then(Json::as_array)
        .ok_or_else(|| invalid(&manifest_path, "no `layers` list"))?;
    let mut layers = Vec::new();
    for (layer_idx, value) in layer_values.iter().enumerate() {
        let layer = descriptor(value, &manifest_path, &format!("layers[{layer_idx}]"))?;
        if layer.media_type != LAYER_GZIP_MEDIA_TYPE
            && layer.media_type != DOCKER_LAYER_GZIP_MEDIA_TYPE
        {
            return Err(invalid(
                &manifest_path,
                format!(
                    "layers[{layer_idx}] is `{}`; only gzip layers are pushed",
                    layer.media_type
                ),
            ));
        }
        check_blob(layout_dir, &layer)?;
        layers.push(layer);
    }
    check_blob(layout_dir, &config)?;
    let config_path = config.path_in(layout_dir);
    let config_json = read_json(&config_path)?;
    let architecture = config_json
        .get("architecture")
        .and_then(Json::as_str)
        .unwrap_or_default();
    let platform: Platform = architecture.parse().map_err(|_| {
        invalid(
            &config_path,
            format!("architecture `{architecture}` is neither amd64 nor arm64"),
        )
    })?;
    Ok(BuiltImage {
        layout_dir: layout_dir.to_owned(),
        manifest_digest: manifest.digest,
        manifest_size: manifest.size,
        manifest_media_type: manifest.media_type,
        config_digest: config.digest.clone(),
        config,
        compressed_size: layers.iter().map(|layer| layer.size).sum(),
        layers,
        platform,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    fn sample_layers(text: &str) -> Vec<Layer> {
        let mut base = Layer::new("base");
        base.file(
            "/etc/passwd",
            0o644,
            Content::Bytes(b"root:x:0:0::/:/x\n".to_vec()),
        );
        base.dir("/tmp", 0o1777, 0, 0);
        base.dir("/home/app", 0o700, 10001, 10001);
        let mut app = Layer::new("app");
        app.file(
            "/usr/local/bin/tool",
            0o755,
            Content::Bytes(text.as_bytes().to_vec()),
        );
        vec![base, app]
    }

    fn run_config() -> RunConfig {
        RunConfig {
            user: "10001:10001".into(),
            env: vec!["PATH=/usr/local/bin".into()],
            entrypoint: vec!["/usr/local/bin/tool".into()],
            working_dir: "/home/app".into(),
            exposed_ports: vec!["8080/tcp".into()],
        }
    }

    #[test]
    fn parents_are_added_in_order() {
        let layers = sample_layers("x");
        let paths: Vec<&str> = layers[1].entries.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            ["usr", "usr/local", "usr/local/bin", "usr/local/bin/tool"]
        );
        let base: Vec<&str> = layers[0].entries.keys().map(String::as_str).collect();
        assert_eq!(base, ["etc", "etc/passwd", "home", "home/app", "tmp"]);
    }

    #[test]
    fn same_input_same_digest_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(
            &dir.path().join("a"),
            Platform::X86_64,
            &sample_layers("v1"),
            &run_config(),
        )
        .unwrap();
        let second = write(
            &dir.path().join("b"),
            Platform::X86_64,
            &sample_layers("v1"),
            &run_config(),
        )
        .unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest);
        let other = write(
            &dir.path().join("c"),
            Platform::X86_64,
            &sample_layers("v2"),
            &run_config(),
        )
        .unwrap();
        assert_ne!(first.manifest_digest, other.manifest_digest);
        assert_eq!(
            first.layers[0], other.layers[0],
            "the base layer does not change with the binary"
        );
        let reopened = open(&dir.path().join("a")).unwrap();
        assert_eq!(
            reopened,
            BuiltImage {
                layout_dir: dir.path().join("a"),
                ..first
            }
        );
    }

    #[test]
    fn rebuilding_in_place_keeps_only_the_new_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("image");
        write(&out, Platform::X86_64, &sample_layers("v1"), &run_config()).unwrap();
        let image = write(&out, Platform::X86_64, &sample_layers("v2"), &run_config()).unwrap();
        let n_blobs = fs::read_dir(out.join("blobs/sha256")).unwrap().count();
        assert_eq!(
            n_blobs,
            image.layers.len() + 2,
            "layers, config and manifest only"
        );
        assert_eq!(open(&out).unwrap().manifest_digest, image.manifest_digest);
    }

    #[test]
    fn unchanged_inputs_reuse_the_layout_and_a_damaged_blob_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("tool");
        fs::write(&source, "binary v1").unwrap();
        let layers = |source: &Path| {
            let mut layer = Layer::new("app");
            layer.file(
                "/usr/local/bin/tool",
                0o755,
                Content::File(source.to_owned()),
            );
            vec![layer]
        };
        let out = dir.path().join("image");
        let first = write(&out, Platform::X86_64, &layers(&source), &run_config()).unwrap();
        let blob = first.layers[0].path_in(&out);
        let written_at = fs::metadata(&blob).unwrap().modified().unwrap();
        let again = write(&out, Platform::X86_64, &layers(&source), &run_config()).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            fs::metadata(&blob).unwrap().modified().unwrap(),
            written_at,
            "not rewritten"
        );
        fs::write(&blob, b"damaged").unwrap();
        let repaired = write(&out, Platform::X86_64, &layers(&source), &run_config()).unwrap();
        assert_eq!(repaired, first);
        assert_eq!(digest_file(&blob).unwrap().0, first.layers[0].digest);
        fs::write(&source, "binary v2").unwrap();
        let changed = write(&out, Platform::X86_64, &layers(&source), &run_config()).unwrap();
        assert_ne!(changed.manifest_digest, first.manifest_digest);
        let mut other_mode = layers(&source);
        other_mode[0].file("/usr/local/bin/tool", 0o700, Content::File(source.clone()));
        let mode_changed = write(&out, Platform::X86_64, &other_mode, &run_config()).unwrap();
        assert_ne!(mode_changed.manifest_digest, changed.manifest_digest);
    }

    #[test]
    fn a_directory_with_other_files_is_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = write(
            dir.path(),
            Platform::X86_64,
            &sample_layers("v1"),
            &run_config(),
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::NotALayout { .. }), "{err}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["notes.txt"]);
    }

    #[test]
    fn tar_entries_have_fixed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let image = write(
            dir.path(),
            Platform::Arm64,
            &sample_layers("v1"),
            &run_config(),
        )
        .unwrap();
        let file = File::open(image.layers[0].path_in(dir.path())).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some(""));
            seen.push((
                entry.path().unwrap().to_string_lossy().into_owned(),
                header.mode().unwrap(),
                header.uid().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("etc/".to_owned(), 0o755, 0),
                ("etc/passwd".to_owned(), 0o644, 0),
                ("home/".to_owned(), 0o755, 0),
                ("home/app/".to_owned(), 0o700, 10001),
                ("tmp/".to_owned(), 0o1777, 0),
            ]
        );
        assert_eq!(image.platform, Platform::Arm64);
    }

    #[test]
    fn a_corrupted_blob_is_reported_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let image = write(
            dir.path(),
            Platform::X86_64,
            &sample_layers("v1"),
            &run_config(),
        )
        .unwrap();
        fs::write(image.layers[1].path_in(dir.path()), b"short").unwrap();
        let err = open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bytes, the manifest says"), "{err}");
    }

    #[test]
    fn a_missing_layout_says_to_build_first() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("run `deployer image build` first"), "{err}");
    }
}
