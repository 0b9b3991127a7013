//! `deployer synth` end to end.

use serde_json::Value as Json;

use crate::helpers::deployer;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn writes_templates_and_manifest() {
    let dir = tmp();
    let run = deployer(dir.path(), &["synth", "--out", "cdk.out"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("cdk.out"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "llm-eval-app.template.json",
            "llm-eval-network.template.json",
            "llm-eval-studio.template.json",
            "llm-eval-toolkit.template.json",
            "manifest.json"
        ]
    );
    let manifest: Json =
        serde_json::from_slice(&std::fs::read(dir.path().join("cdk.out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["order"],
        serde_json::json!([
            "llm-eval-toolkit",
            "llm-eval-network",
            "llm-eval-app",
            "llm-eval-studio"
        ])
    );
    let template: Json = serde_json::from_slice(
        &std::fs::read(dir.path().join("cdk.out/llm-eval-network.template.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(template["Resources"]["Vpc"]["Type"], "AWS::EC2::VPC");
    assert!(
        run.stderr.contains("wrote cdk.out/manifest.json"),
        "{}",
        run.stderr
    );
}

#[test]
fn manifest_snapshot() {
    let dir = tmp();
    let run = deployer(
        dir.path(),
        &["synth", "--out", "out", "--format", "yaml"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let manifest = std::fs::read_to_string(dir.path().join("out/manifest.json")).unwrap();
    insta::assert_snapshot!("manifest", manifest);
}

#[test]
fn single_stack_to_stdout() {
    let dir = tmp();
    let run = deployer(dir.path(), &["synth", "--stack", "app"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let template: Json = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        template["Resources"]["Service"]["Type"],
        "AWS::ECS::Service"
    );
}

#[test]
fn all_stacks_to_stdout_as_yaml_stream() {
    let dir = tmp();
    let run = deployer(dir.path(), &["synth", "--format", "yaml"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("--- # llm-eval-toolkit\nAWSTemplateFormatVersion: 2010-09-09\n"),
        "{}",
        &run.stdout[..80]
    );
    assert_eq!(run.stdout.matches("\n--- # ").count(), 3);
}

#[test]
fn all_stacks_to_stdout_as_json_object() {
    let dir = tmp();
    let run = deployer(dir.path(), &["synth"], &[("DEPLOY_SAGEMAKER_DOMAIN", "No")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let all: Json = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["llm-eval-toolkit", "llm-eval-network", "llm-eval-app"]
    );
}

#[test]
fn output_is_byte_identical_across_runs() {
    let dir = tmp();
    for format in ["json", "yaml"] {
        let first = deployer(dir.path(), &["synth", "--format", format], &[]);
        let second = deployer(dir.path(), &["synth", "--format", format], &[]);
        assert_eq!(first.code, Some(0));
        assert_eq!(first.raw_stdout, second.raw_stdout, "{format}");
    }
}

#[test]
fn env_toggle_drops_app_stack() {
    let dir = tmp();
    let run = deployer(
        dir.path(),
        &["synth", "--stack", "app"],
        &[("DEPLOY_PROMPT_APP", "0")],
    );
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: stack `app` is turned off (DEPLOY_PROMPT_APP is no); stacks: llm-eval-network, llm-eval-studio\n"
    );
}

#[test]
fn bad_toggle_names_variable_and_accepted_values() {
    let dir = tmp();
    let run = deployer(dir.path(), &["synth"], &[("CDK_NAG", "enabled")]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: CDK_NAG: `enabled` is not a boolean; accepted values: yes, no, true, false, 1, 0 (case-insensitive)\n"
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn flag_beats_env_beats_file() {
    let dir = tmp();
    std::fs::write(dir.path().join("deploy.toml"), "prefix = \"filepfx\"\ndeploy_sagemaker_domain = false\ntask_cpu = 1024\ntask_memory = 2048\n").unwrap();
    let run = deployer(
        dir.path(),
        &[
            "synth",
            "--config",
            "deploy.toml",
            "--prefix",
            "flagpfx",
            "--stack",
            "app",
        ],
        &[
            ("DEPLOY_STACK_PREFIX", "envpfx"),
            ("DEPLOY_TASK_MEMORY", "3072"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let template: Json = serde_json::from_str(&run.stdout).unwrap();
    let task = &template["Resources"]["TaskDefinition"]["Properties"];
    assert_eq!(task["Family"], "flagpfx-app");
    assert_eq!(
        (task["Cpu"].as_str(), task["Memory"].as_str()),
        (Some("1024"), Some("3072"))
    );
    let listed = deployer(dir.path(), &["synth", "--config", "deploy.toml"], &[]);
    let all: Json = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(
        all.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["filepfx-toolkit", "filepfx-network", "filepfx-app"]
    );
}

#[test]
fn bad_file_key_is_reported_with_file_name() {
    let dir = tmp();
    std::fs::write(dir.path().join("deploy.toml"), "regoin = \"eu-west-1\"\n").unwrap();
    let run = deployer(dir.path(), &["synth", "--config", "deploy.toml"], &[]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("error: config file deploy.toml: line 1: unknown key `regoin`"),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_format_is_a_usage_error() {
    let dir = tmp();
    let run = deployer(dir.path(), &["synth", "--format", "xml"], &[]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("invalid value 'xml'"), "{}", run.stderr);
}

#[test]
fn help_lists_synth() {
    let dir = tmp();
    let run = deployer(dir.path(), &["--help"], &[]);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("synth"), "{}", run.stdout);
}

/// `docs/deploying.md` (the settings table and the synth section) must list every flag `synth`
/// accepts (generated docs go stale otherwise).
#[test]
fn docs_document_every_synth_flag() {
    let dir = tmp();
    let help = deployer(dir.path(), &["synth", "--help"], &[]);
    assert_eq!(help.code, Some(0));
    let page_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploying.md");
    let page = std::fs::read_to_string(&page_path).unwrap();
    let flags: Vec<&str> = help
        .stdout
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches(|ch: char| !ch.is_ascii_alphanumeric()))
        .filter(|flag| *flag != "--help")
        .collect();
    assert!(flags.len() >= 13, "{flags:?}");
    for flag in flags {
        assert!(
            page.contains(&format!("`{flag}")),
            "docs/deploying.md does not document {flag}"
        );
    }
}

/// Arguments, environment and the expected stderr of one run.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// Settings and `--stack` mistakes exited 1 like internal failures; they are usage errors (2),
/// as in `deployer nag` and clap, and a file's bad value names its line.
#[test]
fn regression_setting_errors_are_usage_errors() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("deploy.toml"),
        "prefix = \"demo\"\n\ntask_cpu = \"lots\"\n",
    )
    .unwrap();
    let cases: &[Case] = &[
        (
            &["synth", "--config", "deploy.toml"],
            &[],
            "error: deploy.toml:3: task_cpu: `lots` is not a whole number\n",
        ),
        (
            &["synth", "--stack", "db"],
            &[],
            "error: no stack named `db` in this configuration; stacks: llm-eval-toolkit, llm-eval-network, llm-eval-app, llm-eval-studio\n",
        ),
        (
            &["synth", "--prefix", "internal"],
            &[],
            "error: --prefix: stack prefix `internal` is invalid; the load balancer name `internal-alb` would begin with `internal-`, which Elastic Load Balancing rejects\n",
        ),
        (
            &["synth"],
            &[("DEPLOY_TASK_MEMORY", "512")],
            "error: CPU from default, memory from DEPLOY_TASK_MEMORY: task size 512 CPU units / 512 MiB is not a Fargate size; e.g. 256/512, 512/1024, 1024/2048, 2048/4096, 4096/8192\n",
        ),
        (
            &["synth"],
            &[("AWS_REGION", "useast1")],
            "error: AWS_REGION: region `useast1` is invalid; expected a name like `us-east-1`\n",
        ),
        (
            &["synth"],
            &[("AWS_REGION", "xx-fake-1")],
            "error: AWS_REGION: region `xx-fake-1` does not exist; regions of the commercial aws partition start with one of us, eu, ap, sa, ca, me, af, il, mx and a direction (`east`, `southeast`, `central`, ...), like `eu-central-1`\n",
        ),
        (
            &["synth", "--config", "missing.toml"],
            &[],
            "error: reading config file missing.toml: No such file or directory (os error 2)\n",
        ),
    ];
    for (args, env, expected) in cases {
        let run = deployer(dir.path(), args, env);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, *expected, "{args:?}");
        assert!(run.stdout.is_empty());
    }
}

/// A git URL with credentials was written into the template in plain text; it is refused
/// without echoing the password.
#[test]
fn regression_git_url_credentials_refused_and_not_echoed() {
    let dir = tmp();
    let run = deployer(
        dir.path(),
        &["synth", "--stack", "studio"],
        &[(
            "DEPLOY_STUDIO_GIT_REPO",
            "https://me:ghp_s3cret@github.com/o/r.git",
        )],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(!run.stderr.contains("ghp_s3cret"), "{}", run.stderr);
    assert!(
        run.stderr.contains("must not contain credentials"),
        "{}",
        run.stderr
    );
}

/// `deployer synth | head` failed with "error: writing to stdout: Broken pipe" and exit 1.
#[test]
fn regression_closed_stdout_is_not_an_error() {
    use std::process::{Command, Stdio};

    let dir = tmp();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .args(["synth", "--format", "yaml"])
        .env_remove("CDK_NAG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the child has synthesized anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr, "");
    assert_eq!(output.status.code(), Some(0));
}

/// `--out` naming a file said "creating out: File exists (os error 17)", and then exited 1
/// while every other wrong flag value exits 2.
#[test]
fn regression_out_is_a_file() {
    let dir = tmp();
    std::fs::write(dir.path().join("out"), "").unwrap();
    let run = deployer(dir.path(), &["synth", "--out", "out"], &[]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "error: --out out: exists and is not a directory\n"
    );
}

/// A toggle variable that is not UTF-8 was read as unset, so the default (yes) applied silently.
#[cfg(unix)]
#[test]
fn regression_non_utf8_variable_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    use std::process::Command;

    let dir = tmp();
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .args(["synth", "--stack", "network"])
        .env_remove("CDK_NAG")
        .env("DEPLOY_PROMPT_APP", std::ffi::OsStr::from_bytes(b"n\xffo"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: DEPLOY_PROMPT_APP: `n\u{fffd}o` is not a boolean"),
        "{stderr}"
    );
}
