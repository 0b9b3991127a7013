//! Runs cfn-lint over every template of every toggle combination (JSON), plus the default
//! configuration as YAML, and requires zero findings (errors and warnings alike).
//!
//! cfn-lint comes from `$CFN_LINT`, else `cfn-lint` on `PATH`; `scripts/test.sh` installs the
//! pinned version into a cached venv and sets `CFN_LINT`. Without it this test fails.

use std::path::PathBuf;
use std::process::Command;

use stacks::StackConfig;

use crate::helpers::synth;

fn cfn_lint() -> PathBuf {
    if let Some(path) = std::env::var_os("CFN_LINT") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("cfn-lint"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("cfn-lint not found: set CFN_LINT or put cfn-lint on PATH; `bash scripts/test.sh` installs it")
    })
}

/// A key ARN of the default region.
const OWN_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

#[test]
fn every_toggle_combination_passes_cfn_lint() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let base = StackConfig::default();
    // A stack that a toggle does not change comes out the same in many combinations: each
    // distinct template is linted once (cfn-lint takes about half a second per template).
    let mut seen = std::collections::HashSet::new();
    for cfg in base.toggle_combinations() {
        let sub = dir.path().join(cfg.toggle_label());
        std::fs::create_dir_all(&sub).unwrap();
        for stack in synth(&cfg) {
            let bytes = stack.template.to_json_bytes();
            if !seen.insert(bytes.clone()) {
                continue;
            }
            let path = sub.join(format!("{}.template.json", stack.name));
            std::fs::write(&path, bytes).unwrap();
            files.push(path);
        }
    }
    println!(
        "{} distinct templates of the toggle combinations",
        files.len()
    );
    // The toolkit's templates bucket only appears for oversized templates.
    let toolkit = stacks::stacks::toolkit::build(
        &base,
        stacks::stacks::toolkit::ToolkitParts {
            repository: true,
            templates_bucket: true,
        },
    );
    let path = dir.path().join("toolkit-with-bucket.template.json");
    std::fs::write(&path, toolkit.to_json_bytes()).unwrap();
    files.push(path);
    // Several app tasks (the service's desired count and its spread).
    let several = StackConfig {
        task_count: 3,
        ..base.clone()
    };
    for stack in synth(&several) {
        let path = dir
            .path()
            .join(format!("{}-3-tasks.template.json", stack.name));
        std::fs::write(&path, stack.template.to_json_bytes()).unwrap();
        files.push(path);
    }
    // An existing customer managed key, by ARN.
    let own_key = StackConfig {
        kms_key: stacks::config::KmsKey::Existing(OWN_KEY_ARN.into()),
        ..base.clone()
    };
    for stack in synth(&own_key) {
        let path = dir
            .path()
            .join(format!("{}-own-key.template.json", stack.name));
        std::fs::write(&path, stack.template.to_json_bytes()).unwrap();
        files.push(path);
    }
    for stack in synth(&base) {
        let path = dir.path().join(format!("{}.template.yaml", stack.name));
        std::fs::write(&path, stack.template.to_yaml_bytes().unwrap()).unwrap();
        files.push(path);
    }
    let output = Command::new(cfn_lint())
        .args([
            "--regions",
            base.region.as_str(),
            "--format",
            "parseable",
            "--",
        ])
        .args(&files)
        .output()
        .unwrap_or_else(|err| panic!("running cfn-lint: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim().is_empty(),
        "cfn-lint reported findings (exit {:?}) over {} templates:\n{stdout}\n{stderr}",
        output.status.code(),
        files.len()
    );
}
