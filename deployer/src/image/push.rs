//! Pushes an image layout with the registry v2 API (through `oci-client`).
//!
//! For each layer and then the config: `HEAD` the blob and skip it when the registry has it,
//! else upload it in one monolithic `POST` + `PUT` (ECR mishandles small chunked uploads).
//! Then the manifest, tagged with the image's digest (`sha256_<hex>`): skipped when that tag
//! already resolves to our digest, else `PUT` with the exact bytes of the layout, so the
//! registry's digest is ours. Every blob is checked against its digest before it leaves the
//! machine. Hosts 127.0.0.1, `[::1]` and localhost are spoken to over plain HTTP, all others
//! over HTTPS only; connections time out after 10 s and a stalled read after 2 minutes.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, Reference, RegistryOperation};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::layout::Descriptor;
use super::{BlobKind, BuiltImage, ImageError, PushEvent, PushTarget, PushedImage, RegistryAuth};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A repository: `host[:port]` and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `host[:port]`.
    pub host: String,
    /// `team/llm-eval`.
    pub path: String,
}

impl Repository {
    /// Parses `host[:port]/path` (no scheme, tag or digest).
    pub fn parse(value: &str) -> Result<Repository, ImageError> {
        let problem = |problem: &str| ImageError::InvalidRepository {
            value: value.to_owned(),
            problem: problem.to_owned(),
        };
        if value.contains("://") {
            return Err(problem("give it without a scheme: HOST[:PORT]/PATH"));
        }
        let (host, path) = value
            .split_once('/')
            .ok_or_else(|| problem("expected HOST[:PORT]/PATH, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval"))?;
        let host_name = host_name(host);
        let names_a_host =
            host_name.contains('.') || host.contains(':') || host_name == "localhost";
        if host.is_empty() || !names_a_host {
            return Err(problem(
                "the first part must be the registry host (with a dot or a port, or localhost)",
            ));
        }
        if path.contains('@') || path.contains(':') {
            return Err(problem(
                "give the repository without a tag or digest; the image is tagged with its digest",
            ));
        }
        let component_ok = |component: &str| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes.iter().all(|byte| {
                    byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(byte)
                })
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        };
        if !path.split('/').all(component_ok) {
            return Err(problem(
                "path components are lowercase letters, digits and . _ -, starting and ending with a letter or digit",
            ));
        }
        Ok(Repository {
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Whether the registry is spoken to over plain HTTP: only on this machine, as Docker does.
    pub fn is_local(&self) -> bool {
        let name = host_name(&self.host);
        name == "localhost"
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

/// `host:port` → `host`; `[::1]:5000` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(name, _)| &host[..=name.len()]);
    }
    host.split_once(':').map_or(host, |(name, _)| name)
}

/// Pushes `image` to `target`; see the module docs.
pub async fn push(
    image: &BuiltImage,
    target: &PushTarget,
    mut progress: impl FnMut(PushEvent),
) -> Result<PushedImage, ImageError> {
    let repository = Repository::parse(&target.repository)?;
    let tag = image.digest_tag();
    let reference = Reference::with_tag(
        repository.host.clone(),
        repository.path.clone(),
        tag.clone(),
    );
    let client = Client::new(ClientConfig {
        protocol: if repository.is_local() {
            ClientProtocol::HttpsExcept(vec![repository.host.clone()])
        } else {
            ClientProtocol::Https
        },
        use_monolithic_push: true,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        platform_resolver: None,
        ..ClientConfig::default()
    });
    let auth = oci_auth(&target.auth);
    let failed = |operation: &str| {
        let operation = operation.to_owned();
        let repository = repository.clone();
        let hint = hint(&target.auth, &repository);
        move |err: OciDistributionError| classify(&repository, &operation, &hint, err)
    };
    client
        .auth(&reference, &auth, RegistryOperation::Push)
        .await
        .map_err(failed("signing in"))?;

    let mut blobs: Vec<(BlobKind, &Descriptor)> = image
        .layers
        .iter()
        .enumerate()
        .map(|(layer_idx, layer)| (BlobKind::Layer(layer_idx), layer))
        .collect();
    blobs.push((BlobKind::Config, &image.config));
    let mut n_blobs_uploaded = 0;
    let mut n_bytes_uploaded = 0;
    for (kind, blob) in blobs {
        let exists = client
            .blob_exists(&reference, &blob.digest)
            .await
            .map_err(failed(&format!("checking blob {}", blob.digest)))?;
        let (digest, size) = (blob.digest.clone(), blob.size);
        if exists {
            progress(PushEvent::BlobExists { kind, digest, size });
            continue;
        }
        progress(PushEvent::BlobUploading {
            kind,
            digest: digest.clone(),
            size,
        });
        let bytes = read_verified(image, blob)?;
        client
            .push_blob(&reference, bytes, &blob.digest)
            .await
            .map_err(failed(&format!("uploading blob {}", blob.digest)))?;
        n_blobs_uploaded += 1;
        n_bytes_uploaded += blob.size;
        progress(PushEvent::BlobUploaded { kind, digest, size });
    }

    let manifest = Descriptor {
        media_type: image.manifest_media_type.clone(),
        digest: image.manifest_digest.clone(),
        size: image.manifest_size,
    };
    let present = match client.fetch_manifest_digest(&reference, &auth).await {
        Ok(digest) => digest == image.manifest_digest,
        Err(err) if is_not_found(&err) => false,
        Err(err) => return Err(failed("checking the manifest")(err)),
    };
    if present {
        progress(PushEvent::ManifestExists {
            digest: image.manifest_digest.clone(),
            tag: tag.clone(),
        });
    } else {
        let bytes = read_verified(image, &manifest)?;
        let content_type =
            image
                .manifest_media_type
                .parse()
                .map_err(|_| ImageError::InvalidLayout {
                    path: image.layout_dir.clone(),
                    problem: format!("manifest media type `{}`", image.manifest_media_type),
                })?;
        client
            .push_manifest_raw(&reference, bytes, content_type)
            .await
            .map_err(failed("uploading the manifest"))?;
        progress(PushEvent::ManifestUploaded {
            digest: image.manifest_digest.clone(),
            tag: tag.clone(),
        });
    }
    Ok(PushedImage {
        uri_by_digest: format!("{repository}@{}", image.manifest_digest),
        digest: image.manifest_digest.clone(),
        tag,
        n_blobs_uploaded,
        n_bytes_uploaded,
        manifest_uploaded: !present,
    })
}

fn oci_auth(auth: &RegistryAuth) -> oci_client::secrets::RegistryAuth {
    match auth {
        RegistryAuth::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
        RegistryAuth::Basic { username, password } => oci_client::secrets::RegistryAuth::Basic(
            username.clone(),
            password.expose_secret().to_owned(),
        ),
    }
}

/// Reads a blob of the layout whole (the upload is one request) and checks its digest.
fn read_verified(image: &BuiltImage, blob: &Descriptor) -> Result<Vec<u8>, ImageError> {
    let path = blob.path_in(&image.layout_dir);
    let bytes = std::fs::read(&path).map_err(ImageError::io("reading", &path))?;
    let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if actual != blob.digest || bytes.len() as u64 != blob.size {
        return Err(ImageError::InvalidLayout {
            path,
            problem: format!(
                "content is {actual} ({} bytes), the manifest says {} ({} bytes); rebuild the image",
                bytes.len(),
                blob.digest,
                blob.size
            ),
        });
    }
    Ok(bytes)
}

/// What to check when the registry refuses us, from where the credentials came.
fn hint(auth: &RegistryAuth, repository: &Repository) -> String {
    match auth {
        RegistryAuth::Anonymous => "no credentials were found for this registry: pass --registry-user with REGISTRY_PASSWORD, or log in with `docker login`".to_owned(),
        RegistryAuth::Basic { username, .. }
            if username == "AWS" && super::ecr::parse_host(&repository.host).is_some() =>
        {
            format!(
                "check that the AWS identity may push to {} (ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage)",
                repository.path
            )
        }
        RegistryAuth::Basic { username, .. } => format!(
            "check the password of `{username}` (REGISTRY_PASSWORD or the Docker config) and that it may push to {}",
            repository.path
        ),
    }
}

fn is_not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|error| {
                matches!(
                    error.code,
                    OciErrorCode::ManifestUnknown | OciErrorCode::NotFound
                )
            })
        }
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// Turns a registry failure into the error that says what to do.
fn classify(
    repository: &Repository,
    operation: &str,
    hint: &str,
    err: OciDistributionError,
) -> ImageError {
    let (status, codes, detail) = describe(&err);
    let has = |wanted: &str| codes.iter().any(|code| code == wanted);
    if has("NAME_UNKNOWN") || (status == Some(404) && operation.starts_with("uploading")) {
        return ImageError::RepositoryNotFound {
            repository: repository.to_string(),
            detail,
        };
    }
    if matches!(status, Some(401 | 403)) || has("UNAUTHORIZED") || has("DENIED") {
        return ImageError::Unauthorized {
            registry: repository.host.clone(),
            operation: operation.to_owned(),
            detail,
            hint: hint.to_owned(),
        };
    }
    ImageError::Registry {
        registry: repository.host.clone(),
        operation: operation.to_owned(),
        detail,
    }
}

/// HTTP status, registry error codes and a readable message of an `oci-client` error.
fn describe(err: &OciDistributionError) -> (Option<u16>, Vec<String>, String) {
    match err {
        OciDistributionError::ServerError { code, message, .. } => {
            let (codes, text) = envelope(message);
            let text = text.unwrap_or_else(|| shorten(message.trim()));
            (Some(*code), codes, format!("HTTP {code}: {text}"))
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes = envelope
                .errors
                .iter()
                .map(|error| code_name(&error.code))
                .collect();
            let text = envelope
                .errors
                .iter()
                .map(|error| format!("{}: {}", code_name(&error.code), error.message))
                .collect::<Vec<_>>()
                .join("; ");
            (None, codes, text)
        }
        OciDistributionError::UnauthorizedError { .. } => {
            (Some(401), Vec::new(), "HTTP 401 Unauthorized".to_owned())
        }
        OciDistributionError::AuthenticationFailure(reason) => (
            Some(401),
            Vec::new(),
            format!("token request refused: {}", shorten(reason.trim())),
        ),
        OciDistributionError::RequestError(request) => {
            let mut text = request.to_string();
            let mut source = std::error::Error::source(request);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            (
                request.status().map(|status| status.as_u16()),
                Vec::new(),
                text,
            )
        }
        other => (None, Vec::new(), other.to_string()),
    }
}

/// The codes and messages of a registry error body (`{"errors":[{"code":..,"message":..}]}`).
fn envelope(body: &str) -> (Vec<String>, Option<String>) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return (Vec::new(), None);
    };
    let Some(errors) = value.get("errors").and_then(|errors| errors.as_array()) else {
        return (Vec::new(), None);
    };
    let field = |error: &serde_json::Value, key: &str| {
        error
            .get(key)
            .and_then(|text| text.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let codes = errors.iter().map(|error| field(error, "code")).collect();
    let text = errors
        .iter()
        .map(|error| format!("{}: {}", field(error, "code"), field(error, "message")))
        .collect::<Vec<_>>()
        .join("; ");
    (codes, Some(text))
}

fn code_name(code: &OciErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// At most 300 characters of a registry's free-form answer (an HTML error page, say).
fn shorten(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on unexpected errors; that is the point.
mod tests {
    use super::*;

    fn check(value: &str, expected: Result<(&str, &str), &str>) {
        match (Repository::parse(value), expected) {
            (Ok(repository), Ok((host, path))) => {
                assert_eq!(
                    (repository.host.as_str(), repository.path.as_str()),
                    (host, path)
                );
            }
            (Err(err), Err(fragment)) => {
                assert!(err.to_string().contains(fragment), "{value}: {err}");
            }
            (got, wanted) => panic!("{value}: got {got:?}, wanted {wanted:?}"),
        }
    }

    #[test]
    fn repositories() {
        check(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval",
            Ok(("123456789012.dkr.ecr.us-east-1.amazonaws.com", "llm-eval")),
        );
        check(
            "127.0.0.1:5000/team/llm-eval",
            Ok(("127.0.0.1:5000", "team/llm-eval")),
        );
        check("localhost/app", Ok(("localhost", "app")));
        check("[::1]:5000/app", Ok(("[::1]:5000", "app")));
        check("llm-eval", Err("expected HOST[:PORT]/PATH"));
        check("team/llm-eval", Err("must be the registry host"));
        check("https://ghcr.io/a/b", Err("without a scheme"));
        check("ghcr.io/a/b:latest", Err("without a tag or digest"));
        check("ghcr.io/a/b@sha256:00", Err("without a tag or digest"));
        check("ghcr.io/A/b", Err("lowercase"));
        check("ghcr.io/a//b", Err("lowercase"));
        check("ghcr.io/", Err("lowercase"));
    }

    #[test]
    fn only_this_machine_is_plain_http() {
        let local = |value: &str| Repository::parse(value).unwrap().is_local();
        assert!(local("127.0.0.1:5000/a"));
        assert!(local("localhost:5000/a"));
        assert!(local("[::1]:5000/a"));
        assert!(!local("registry.example.com/a"));
        assert!(!local("10.0.0.1:5000/a"));
        assert!(!local("localhost.example.com/a"));
    }

    #[test]
    fn registry_errors_say_what_to_do() {
        let repository =
            Repository::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval").unwrap();
        let missing = classify(
            &repository,
            "uploading blob sha256:00",
            "hint",
            OciDistributionError::ServerError {
                code: 404,
                url: "https://x/v2/llm-eval/blobs/uploads/".into(),
                message: r#"{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'llm-eval' does not exist in the registry with id '123456789012'"}]}"#.into(),
            },
        )
        .to_string();
        assert!(
            missing.contains("no such repository")
                && missing.contains("does not exist in the registry")
                && missing.contains("toolkit stack"),
            "{missing}"
        );
        let refused = classify(
            &repository,
            "signing in",
            "check the password",
            OciDistributionError::ServerError {
                code: 401,
                url: "u".into(),
                message: "nope".into(),
            },
        )
        .to_string();
        assert!(
            refused.contains("refused access while signing in")
                && refused.contains("check the password"),
            "{refused}"
        );
    }

    #[test]
    fn long_answers_are_shortened() {
        let text = "x".repeat(1000);
        assert_eq!(shorten(&text).len(), 303);
        assert_eq!(shorten("short"), "short");
    }
}
