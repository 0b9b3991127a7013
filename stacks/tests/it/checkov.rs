//! checkov (PyPI), a second opinion on our templates: every template of every toggle
//! combination has no failed check; each check a resource fails by design is skipped in its
//! metadata with the reason (README.md, "Security checks", lists them).
//!
//! checkov comes from `$CHECKOV`, else `checkov` on `PATH`, else
//! `$LLM_EVAL_CACHE/checkov-venv/bin/checkov`; `scripts/test.sh` installs it there.

use std::path::PathBuf;
use std::process::Command;

use stacks::StackConfig;

use crate::helpers::synth;

fn checkov() -> PathBuf {
    if let Some(path) = std::env::var_os("CHECKOV") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("checkov"))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = on_path {
        return path;
    }
    let cache = std::env::var_os("LLM_EVAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/llm-eval"))
        })
        .unwrap_or_default();
    let venv = cache.join("checkov-venv/bin/checkov");
    assert!(
        venv.is_file(),
        "checkov not found (CHECKOV, PATH, {}): `bash scripts/test.sh` installs it",
        venv.display()
    );
    venv
}

#[test]
fn every_toggle_combination_passes_checkov_with_reasoned_skips() {
    let dir = tempfile::tempdir().unwrap();
    let base = StackConfig::default();
    let mut n_templates = 0;
    for cfg in base.toggle_combinations() {
        let sub = dir.path().join(cfg.toggle_label());
        std::fs::create_dir_all(&sub).unwrap();
        for stack in synth(&cfg) {
            std::fs::write(
                sub.join(format!("{}.template.json", stack.name)),
                stack.template.to_json_bytes(),
            )
            .unwrap();
            n_templates += 1;
        }
    }
    let output = Command::new(checkov())
        .args([
            "--framework",
            "cloudformation",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "-d",
        ])
        .arg(dir.path())
        .output()
        .unwrap_or_else(|err| panic!("running checkov: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "checkov's report is not JSON ({err}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    // One report per framework: a list, or the single object.
    let reports = match &report {
        serde_json::Value::Array(reports) => reports.clone(),
        other => vec![other.clone()],
    };
    let (mut passed, mut failed, mut skipped) = (0, Vec::new(), 0);
    for report in &reports {
        passed += report["summary"]["passed"].as_u64().unwrap_or(0);
        skipped += report["summary"]["skipped"].as_u64().unwrap_or(0);
        for check in report["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            failed.push(format!(
                "{} {} {}",
                check["check_id"].as_str().unwrap_or("?"),
                check["resource"].as_str().unwrap_or("?"),
                check["file_path"].as_str().unwrap_or("?")
            ));
        }
        for check in report["results"]["skipped_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let comment = check["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or("");
            assert!(
                comment.len() > 20,
                "a skip without a reason: {} {}",
                check["check_id"],
                check["resource"]
            );
        }
    }
    assert!(
        failed.is_empty(),
        "checkov failed checks over {n_templates} templates:\n{}",
        failed.join("\n")
    );
    assert!(
        passed > 100 && skipped > 0,
        "passed {passed}, skipped {skipped}: did checkov read the templates?"
    );
}
