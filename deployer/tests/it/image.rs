//! `deployer image build | push` against real components: the debug `llm-eval` this workspace
//! built is packed, pushed to Debian's `docker-registry` on 127.0.0.1 with htpasswd basic auth
//! (as ECR uses Basic), pulled back and inspected with `skopeo`, unpacked with `umoci`, and run
//! from the unpacked root with `chroot` (as the task's user) until `GET /healthz` answers.
//!
//! The binary: `env!("CARGO_BIN_EXE_...")` only names this crate's own binaries, and artifact
//! dependencies are unstable, so [`llm_eval`] takes `llm-eval` from the profile directory this
//! test binary runs in (`<target>/debug/deps/it-*` → `<target>/debug/llm-eval`), which a
//! workspace build (`cargo nextest run --workspace`, as `.ci/run` does) has made; only when it
//! is missing does it run `cargo build -p llm-eval --bin llm-eval` (a debug build, never a second
//! release build).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::helpers::{Run, deployer};

const USER: &str = "tester";
const PASSWORD: &str = "s3cret-Pa55word";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The debug `llm-eval` of this build; see the module docs.
pub fn llm_eval() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
            let binary = profile_dir.join("llm-eval");
            if !binary.is_file() {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = Command::new(cargo)
                    .args(["build", "-p", "llm-eval", "--bin", "llm-eval"])
                    .current_dir(workspace())
                    .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                    .status()
                    .unwrap();
                assert!(status.success(), "cargo build -p llm-eval --bin llm-eval");
            }
            binary
        })
        .clone()
}

fn json(run: &Run) -> Json {
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|err| panic!("{err}: {}", run.stdout))
}

fn build(dir: &Path, out: &str) -> Json {
    let binary = llm_eval();
    json(&deployer(
        dir,
        &[
            "image",
            "build",
            "--binary",
            binary.to_str().unwrap(),
            "--out",
            out,
            "--json",
        ],
        &[],
    ))
}

/// Runs a tool to completion within two minutes; panics with its stderr on failure.
pub fn tool(command: &mut Command) -> Vec<u8> {
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{described}: {err} (scripts/test.sh installs it)"));
    // Read both pipes while waiting, so a chatty tool cannot block on a full pipe.
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{described} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr.join().unwrap();
    assert!(
        status.success(),
        "{described}: {}",
        String::from_utf8_lossy(&stderr)
    );
    stdout.join().unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status of `GET path` on 127.0.0.1:`port`, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when the test ends, however it ends.
pub struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's `docker-registry` on 127.0.0.1 with htpasswd (bcrypt) basic auth for `user` and
/// `password`, data in `dir`; returns the process and `127.0.0.1:<port>`.
pub fn start_registry(dir: &Path, user: &str, password: &str) -> (Killed, String) {
    let htpasswd = tool(Command::new("htpasswd").args(["-Bbn", user, password]));
    std::fs::write(dir.join("htpasswd"), htpasswd).unwrap();
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: deployer-tests\n    path: {}\n",
        dir.join("data").display(),
        dir.join("htpasswd").display()
    );
    std::fs::write(dir.join("registry.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("registry.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
        .spawn()
        .expect("docker-registry starts (scripts/test.sh installs it)");
    let registry = Killed(child);
    wait_for(
        "the registry answers /v2/ with 401",
        Duration::from_secs(30),
        || http_status(port, "/v2/") == Some(401),
    );
    (registry, format!("127.0.0.1:{port}"))
}

fn push(dir: &Path, repository: &str, layout: &str, password: &str) -> Run {
    deployer(
        dir,
        &[
            "image",
            "push",
            "--repository",
            repository,
            "--layout",
            layout,
            "--registry-user",
            USER,
            "--json",
        ],
        &[("REGISTRY_PASSWORD", password)],
    )
}

fn is_root() -> bool {
    String::from_utf8_lossy(&tool(Command::new("id").arg("-u"))).trim() == "0"
}

/// `chroot` (root) or `unshare --map-root-user chroot` (elsewhere) into `rootfs`.
fn in_root(rootfs: &Path, user: &str) -> Command {
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .expect("chroot (coreutils)");
    if is_root() {
        let mut command = Command::new(chroot);
        command.arg(format!("--userspec={user}")).arg(rootfs);
        command
    } else {
        let mut command = Command::new("unshare");
        command.arg("--map-root-user").arg(chroot).arg(rootfs);
        command
    }
}

/// Every regular file and directory under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
                found.push(format!("{relative}/"));
            } else {
                found.push(relative);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn image_is_pushed_pulled_unpacked_and_serves_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(dir.path(), "image");
    let digest = built["manifest_digest"].as_str().unwrap().to_owned();
    let compressed_size = built["compressed_size"].as_u64().unwrap();
    assert_eq!(built["platform"], "X86_64");
    let binary_size = std::fs::metadata(llm_eval()).unwrap().len();
    // Size: the image is the binary plus a few MB of libraries and certificates, compressed.
    assert!(
        compressed_size < binary_size && compressed_size > binary_size / 10,
        "{compressed_size} compressed for a {binary_size}-byte binary"
    );

    let registry_dir = tempfile::tempdir().unwrap();
    let (_registry, host) = start_registry(registry_dir.path(), USER, PASSWORD);
    let repository = format!("{host}/team/llm-eval");

    let first = json(&push(dir.path(), &repository, "image", PASSWORD));
    assert_eq!(first["n_blobs_uploaded"], 3, "two layers and the config");
    assert_eq!(first["manifest_uploaded"], true);
    assert_eq!(
        first["uri_by_digest"].as_str().unwrap(),
        format!("{repository}@{digest}")
    );
    let blob_bytes = first["n_bytes_uploaded"].as_u64().unwrap();
    assert!(blob_bytes > compressed_size && blob_bytes < compressed_size + 10_000);

    // A second push uploads nothing.
    let second = json(&push(dir.path(), &repository, "image", PASSWORD));
    assert_eq!(second["n_blobs_uploaded"], 0);
    assert_eq!(second["n_bytes_uploaded"], 0);
    assert_eq!(second["manifest_uploaded"], false);

    // A wrong password is refused with a hint, and the password is never echoed.
    let refused = push(dir.path(), &repository, "image", "wrong-password-123");
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("refused access"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("wrong-password-123"),
        "{}",
        refused.stderr
    );

    // Pull back: the registry serves our exact manifest under the digest and the digest tag.
    let creds = format!("--creds={USER}:{PASSWORD}");
    let by_digest = format!("docker://{repository}@{digest}");
    let raw = tool(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &creds,
        &by_digest,
    ]));
    let layout_manifest = std::fs::read(
        dir.path()
            .join("image/blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(raw, layout_manifest);
    let manifest: Json = serde_json::from_slice(&raw).unwrap();
    let layer_sizes: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| layer["size"].as_u64().unwrap())
        .sum();
    assert_eq!(layer_sizes, compressed_size);
    let tag = format!("docker://{repository}:{}", digest.replace(':', "_"));
    let inspected: Json = serde_json::from_slice(&tool(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &creds,
        &tag,
    ])))
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(
        (inspected["Architecture"].as_str(), inspected["Os"].as_str()),
        (Some("amd64"), Some("linux"))
    );
    let config: Json = serde_json::from_slice(&tool(Command::new("skopeo").args([
        "inspect",
        "--config",
        "--tls-verify=false",
        &creds,
        &by_digest,
    ])))
    .unwrap();
    assert_eq!(config["config"]["User"], "10001:10001");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/llm-eval", "serve"])
    );
    assert!(
        config.get("created").is_none(),
        "no build time in the config"
    );

    let pulled = dir.path().join("pulled");
    tool(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("--src-creds={USER}:{PASSWORD}"),
        &by_digest,
        &format!("oci:{}:pulled", pulled.display()),
    ]));
    let bundle = dir.path().join("bundle");
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !is_root() {
        unpack.arg("--rootless");
    }
    tool(
        unpack
            .arg("--image")
            .arg(format!("{}:pulled", pulled.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");

    // Exactly the binary, its loader and libraries, the CA bundle and the user: no shell.
    let files: Vec<String> = tree(&rootfs)
        .into_iter()
        .filter(|path| !path.ends_with('/'))
        .collect();
    let expected_fixed = [
        "etc/group",
        "etc/nsswitch.conf",
        "etc/passwd",
        "etc/ssl/certs/ca-certificates.crt",
        "usr/local/bin/llm-eval",
    ];
    for fixed in expected_fixed {
        assert!(
            files.iter().any(|file| file == fixed),
            "{fixed} in {files:?}"
        );
    }
    let libraries: Vec<&String> = files
        .iter()
        .filter(|file| !expected_fixed.contains(&file.as_str()))
        .collect();
    assert!(
        libraries.iter().all(|file| file.contains(".so")),
        "only shared libraries besides the fixed files: {libraries:?}"
    );
    assert!(
        libraries.iter().any(|file| file.contains("libc.so")),
        "{libraries:?}"
    );
    assert!(!rootfs.join("bin/sh").exists() && !rootfs.join("usr/bin").exists());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("llm-eval:x:10001:10001:llm-eval:/home/llm-eval:"),
        "{passwd}"
    );
    if is_root() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let home = std::fs::metadata(rootfs.join("home/llm-eval")).unwrap();
        assert_eq!(
            (home.uid(), home.gid(), home.permissions().mode() & 0o7777),
            (10001, 10001, 0o700)
        );
        let tmp = std::fs::metadata(rootfs.join("tmp")).unwrap();
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    }

    // Run the entrypoint from the unpacked root with the image's environment, as user 10001.
    let runtime: Json =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
            .unwrap();
    let process = &runtime["process"];
    let args: Vec<&str> = process["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    assert_eq!(args, ["/usr/local/bin/llm-eval", "serve"]);
    let user = format!("{}:{}", process["user"]["uid"], process["user"]["gid"]);
    assert_eq!(user, "10001:10001");
    let env: Vec<(String, String)> = process["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|pair| {
            pair.as_str()?
                .split_once('=')
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
        })
        .collect();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let serve_log = dir.path().join("serve.log");
    let server = Killed(
        in_root(&rootfs, &user)
            .args(&args)
            .env_clear()
            .envs(env.iter().cloned())
            .env("LLM_EVAL_BIND", &bind)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&serve_log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(
        "GET /healthz answers 200 from the unpacked image",
        Duration::from_secs(30),
        || http_status(port, "/healthz") == Some(200),
    );
    // The task's health check, exec form: `llm-eval` found through the image's PATH.
    let health = in_root(&rootfs, &user)
        .args(["llm-eval", "healthcheck"])
        .env_clear()
        .envs(env.iter().cloned())
        .env("LLM_EVAL_BIND", &bind)
        .output()
        .unwrap();
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    drop(server);
}

#[test]
fn the_same_binary_gives_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let first = build(dir.path(), "a");
    let second = build(dir.path(), "b");
    assert_eq!(first["manifest_digest"], second["manifest_digest"]);
    assert_eq!(first["layers"], second["layers"]);
    let names = |layout: &str| -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path().join(layout).join("blobs/sha256"))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        names.sort();
        names
    };
    assert_eq!(names("a"), names("b"));
}

#[test]
fn building_for_a_platform_this_machine_cannot_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = workspace();
    let run = deployer(
        dir.path(),
        &[
            "image",
            "build",
            "--platform",
            "ARM64",
            "--workspace",
            workspace.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot build an image for ARM64 (linux/arm64) on this x86_64 machine")
            && run.stderr.contains("--builder docker")
            && run.stderr.contains("bootstrap"),
        "{}",
        run.stderr
    );
    let binary = llm_eval();
    let run = deployer(
        dir.path(),
        &[
            "image",
            "build",
            "--platform",
            "ARM64",
            "--binary",
            binary.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("built for x86_64, but the task definition runs ARM64"),
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("cdk.out").exists(), "nothing written");
}

#[test]
fn docker_builder_without_docker_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    let workspace = workspace();
    let args = [
        "image",
        "build",
        "--builder",
        "docker",
        "--workspace",
        workspace.to_str().unwrap(),
    ];
    let run = deployer(
        dir.path(),
        &args,
        &[("PATH", empty_path.path().to_str().unwrap())],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("`docker` is not installed") && run.stderr.contains("native builder"),
        "{}",
        run.stderr
    );

    // A scripted stand-in for the docker CLI whose daemon is down, as the real one reports it.
    let fake = empty_path.path().join("docker");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = deployer(
        dir.path(),
        &args,
        &[("PATH", empty_path.path().to_str().unwrap())],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach the Docker daemon")
            && run.stderr.contains("Is the docker daemon running?"),
        "{}",
        run.stderr
    );
    assert!(
        !dir.path().join("cdk.out").exists(),
        "nothing written before Docker answers"
    );
}

/// The final stage's instructions of a Dockerfile: (instruction, rest of the line), with
/// continuation lines joined.
fn final_stage(dockerfile: &str) -> (usize, Vec<(String, String)>) {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let instructions: Vec<(String, String)> = joined
        .iter()
        .map(|line| {
            let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
            (name.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect();
    let n_stages = instructions
        .iter()
        .filter(|(name, _)| name == "FROM")
        .count();
    let last_from = instructions
        .iter()
        .rposition(|(name, _)| name == "FROM")
        .unwrap();
    (n_stages, instructions[last_from..].to_vec())
}

#[test]
fn dockerfile_matches_the_task_definition() {
    let dockerfile = std::fs::read_to_string(workspace().join("app/llm-eval/Dockerfile")).unwrap();
    let (n_stages, stage) = final_stage(&dockerfile);
    assert!(n_stages >= 2, "multi-stage");
    let one = |name: &str| -> String {
        let found: Vec<&String> = stage
            .iter()
            .filter(|(instruction, _)| instruction == name)
            .map(|(_, rest)| rest)
            .collect();
        assert_eq!(found.len(), 1, "one {name} in the final stage");
        found[0].clone()
    };
    let dir = tempfile::tempdir().unwrap();
    let template = json(&deployer(dir.path(), &["synth", "--stack", "app"], &[]));
    let task_definition = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|resource| resource["Type"] == "AWS::ECS::TaskDefinition")
        .unwrap();
    let container = &task_definition["Properties"]["ContainerDefinitions"][0];

    assert_eq!(one("USER"), container["User"].as_str().unwrap());
    let from = one("FROM");
    assert!(
        from.contains("distroless") && !from.contains(":debug"),
        "a runtime image without a shell: {from}"
    );
    let entrypoint: Json = serde_json::from_str(&one("ENTRYPOINT")).expect("exec form");
    assert_eq!(
        entrypoint,
        serde_json::json!(["/usr/local/bin/llm-eval", "serve"])
    );

    let healthcheck = one("HEALTHCHECK");
    let (options, command) = healthcheck
        .split_once(" CMD ")
        .expect("HEALTHCHECK ... CMD [...]");
    let command: Json = serde_json::from_str(command).expect("exec form");
    let check = &container["HealthCheck"];
    let mut expected = check["Command"].as_array().unwrap().clone();
    assert_eq!(
        expected.remove(0),
        "CMD",
        "the task's check is exec form too"
    );
    assert_eq!(command, Json::Array(expected));
    for (option, key) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
    ] {
        assert!(
            options.contains(&format!("--{option}={}s", check[key])),
            "{option} in {options}"
        );
    }
    assert!(
        options.contains(&format!("--retries={}", check["Retries"])),
        "{options}"
    );

    let env = one("ENV");
    let port = container["PortMappings"][0]["ContainerPort"]
        .as_i64()
        .unwrap();
    assert!(
        env.contains(&format!("LLM_EVAL_BIND=0.0.0.0:{port}")),
        "{env}"
    );
    assert!(
        env.contains("PATH=/usr/local/bin"),
        "the health check finds llm-eval: {env}"
    );
    assert_eq!(one("EXPOSE"), port.to_string());
    assert!(
        stage
            .iter()
            .any(|(name, rest)| name == "COPY" && rest.ends_with("/usr/local/bin/llm-eval")),
        "the binary is copied to /usr/local/bin"
    );
}
