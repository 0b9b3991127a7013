//! checkov, a second opinion on our templates: one checkov process over every template of the
//! default configuration, of `DEPLOY_KMS_KEY=yes`, of CloudFront access logs with a key, and of
//! the economy options with public task egress, must report no failed check. Each accepted
//! check is skipped with checkov's own metadata (`Metadata.checkov.skip`, see
//! `stacks/src/stacks/checkov.rs`) next to its resource; the test also requires that checkov
//! applied every skip we wrote (a skip of a check id that does not exist or does not apply to
//! the resource type fails), and parsed every template.
//!
//! checkov comes from `$CHECKOV`, else `checkov` on `PATH`; `scripts/test.sh` installs the
//! pinned version into its own cached venv and sets `CHECKOV`. Without it this test fails.
//! `--skip-download` keeps checkov offline.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use stacks::StackConfig;
use stacks::config::KmsKey;

use crate::helpers::synth;

/// checkov takes about 15 s here; a hung run fails the test instead of the CI job.
const TIMEOUT: Duration = Duration::from_secs(300);

fn checkov() -> PathBuf {
    if let Some(path) = std::env::var_os("CHECKOV") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("checkov"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("checkov not found: set CHECKOV or put checkov on PATH; `bash scripts/test.sh` installs it")
    })
}

/// `(file name, resource "Type.LogicalId", check id)` of every skip written into `template`.
fn written_skips(file: &str, template: &Json, out: &mut BTreeSet<(String, String, String)>) {
    for (id, resource) in template["Resources"].as_object().into_iter().flatten() {
        let kind = resource["Type"].as_str().unwrap_or_default();
        for skip in resource["Metadata"]["checkov"]["skip"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let check = skip["id"].as_str().unwrap_or_default();
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(comment.len() >= 20, "{file} {id} {check}: reason too short");
            out.insert((file.to_owned(), format!("{kind}.{id}"), check.to_owned()));
        }
    }
}

#[test]
fn checkov_passes_every_template_with_reasoned_skips() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    let configs = [
        ("default", StackConfig::default()),
        (
            "kms",
            StackConfig {
                kms_key: KmsKey::Create,
                ..StackConfig::default()
            },
        ),
        (
            "logs-kms",
            StackConfig {
                kms_key: KmsKey::Create,
                cloudfront_access_logs: true,
                ..StackConfig::default()
            },
        ),
        // The economy options with public task egress: no NAT gateway, tasks with addresses.
        (
            "lean-spot-public-ip",
            StackConfig {
                lean_network: true,
                fargate_spot: true,
                task_egress: stacks::config::TaskEgress::PublicIp,
                deploy_sagemaker_domain: false,
                ..StackConfig::default()
            },
        ),
    ];
    let mut written = BTreeSet::new();
    let mut files = 0;
    for (label, cfg) in &configs {
        let sub = templates.join(label);
        std::fs::create_dir_all(&sub).unwrap();
        for stack in synth(cfg) {
            let name = format!("{}.template.json", stack.name);
            std::fs::write(sub.join(&name), stack.template.to_json_bytes()).unwrap();
            written_skips(
                &format!("/{label}/{name}"),
                &stack.template.to_json_value(),
                &mut written,
            );
            files += 1;
        }
    }
    let report_path = dir.path().join("report.json");
    let mut child = Command::new(checkov())
        .arg("--directory")
        .arg(&templates)
        .args([
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&report_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("running checkov: {err}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("checkov did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&report_path).unwrap();
    let report: Json = serde_json::from_str(&text).unwrap_or_else(|err| {
        panic!("checkov (exit {status}) wrote no JSON report ({err}):\n{text}")
    });
    // One framework gives an object; several give a list.
    let report = match report {
        Json::Array(mut items) => items.remove(0),
        other => other,
    };
    let summary = &report["summary"];
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    assert!(
        summary["resource_count"].as_u64().unwrap_or(0) > 100,
        "checkov read too few resources over {files} templates: {summary}"
    );
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|check| {
            format!(
                "{} {} {}: {}",
                check["check_id"].as_str().unwrap_or_default(),
                check["file_path"].as_str().unwrap_or_default(),
                check["resource"].as_str().unwrap_or_default(),
                check["check_name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failed {} checks without a skip:\n{}",
        failed.len(),
        failed.join("\n")
    );
    let applied: BTreeSet<(String, String, String)> = report["results"]["skipped_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|check| {
            (
                check["file_path"].as_str().unwrap_or_default().to_owned(),
                check["resource"].as_str().unwrap_or_default().to_owned(),
                check["check_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let unapplied: Vec<_> = written.difference(&applied).collect();
    assert!(
        unapplied.is_empty(),
        "skips checkov did not apply (unknown id or wrong resource): {unapplied:?}\napplied: {applied:?}"
    );
    assert!(!written.is_empty());
}
