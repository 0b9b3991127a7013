//! Image size and build time: runs `deployer image build` as a user does (a release build of
//! `llm-eval`, incremental when cargo has one, then packing), then packs that release binary
//! again with `--binary` to time the packing alone, and prints the binary's size, each layer's
//! compressed size and the image total against the 30 MB target.
//!
//! `cargo bench -p deployer --bench image` (the first run compiles the app in release mode).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// The target for the compressed image.
const TARGET_BYTES: u64 = 30_000_000;

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deployer sits in the workspace")
        .to_owned();
    let out = tempfile::tempdir().expect("temporary directory");

    let (built, with_cargo) = build(&workspace, &out.path().join("image"), None);
    // `<target>/release/deps/image-*` is this benchmark; the release binary is beside `deps`.
    let release_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_owned))
        .expect("benchmark in <target>/release/deps");
    let binary = release_dir.join("llm-eval");
    let binary_size = std::fs::metadata(&binary)
        .map(|metadata| metadata.len())
        .unwrap_or_else(|err| panic!("{}: {err}", binary.display()));
    let mut pack_times = Vec::new();
    let mut digests = Vec::new();
    for run_idx in 0..3 {
        let (again, elapsed) = build(
            &workspace,
            &out.path().join(format!("again-{run_idx}")),
            Some(&binary),
        );
        pack_times.push(elapsed);
        digests.push(
            again["manifest_digest"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    pack_times.sort();

    let compressed = built["compressed_size"].as_u64().unwrap_or_default();
    println!("llm-eval release binary        {:>8.1} MB", mb(binary_size));
    for (layer_idx, layer) in built["layers"].as_array().into_iter().flatten().enumerate() {
        let name = if layer_idx == 0 {
            "base (libraries, CA, user)"
        } else {
            "llm-eval"
        };
        println!(
            "layer {} {:<24} {:>8.1} MB compressed",
            layer_idx + 1,
            name,
            mb(layer["size"].as_u64().unwrap_or_default())
        );
    }
    println!(
        "image                          {:>8.1} MB compressed (target < {:.0} MB): {}",
        mb(compressed),
        mb(TARGET_BYTES),
        if compressed < TARGET_BYTES {
            "within target"
        } else {
            "OVER TARGET"
        }
    );
    println!(
        "deployer image build           {:>8.1} s (cargo build --release check or build, then packing)",
        with_cargo.as_secs_f64()
    );
    println!(
        "packing alone (--binary)       {:>8.1} s median of 3 (min {:.1} s, max {:.1} s)",
        pack_times[1].as_secs_f64(),
        pack_times[0].as_secs_f64(),
        pack_times[2].as_secs_f64()
    );
    let reproducible = digests
        .iter()
        .all(|digest| digest == built["manifest_digest"].as_str().unwrap_or_default());
    println!(
        "same digest on every build     {}",
        if reproducible { "yes" } else { "NO" }
    );
}

/// Runs `deployer image build --json` and times it.
fn build(workspace: &Path, out: &Path, binary: Option<&PathBuf>) -> (Json, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command
        .current_dir(workspace)
        .args(["image", "build", "--json", "--out"])
        .arg(out);
    if let Some(binary) = binary {
        command.arg("--binary").arg(binary);
    }
    let started = Instant::now();
    let output = command.output().expect("deployer runs");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "deployer image build: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built = serde_json::from_slice(&output.stdout).expect("--json output");
    (built, elapsed)
}

fn mb(n_bytes: u64) -> f64 {
    n_bytes as f64 / 1e6
}
