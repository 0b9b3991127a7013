//! `deployer nag` and `CDK_NAG=true deployer synth` run as real processes: exit codes,
//! formats, explain and list, our own stacks.

use std::path::Path;

use crate::helpers::{Run, deployer};

const CLEAN: &str = "Resources:\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {GroupDescription: web tier, SecurityGroupIngress: [{CidrIp: 10.0.0.0/8}]}\n";
const OPEN: &str = "Resources:\n  Acl: {Type: AWS::EC2::NetworkAcl}\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {GroupDescription: web tier, SecurityGroupIngress: [{CidrIp: 0.0.0.0/0}]}\n";
const SUPPRESSED: &str = "Resources:\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-EC23, reason: public web tier behind the ALB only}]}}\n    Properties: {GroupDescription: web tier, SecurityGroupIngress: [{CidrIp: 0.0.0.0/0}]}\n";

/// Writes `text` to `dir/name` and runs `deployer nag --template name extra...` in `dir`.
fn nag(dir: &Path, name: &str, text: &str, extra: &[&str]) -> Run {
    std::fs::write(dir.join(name), text).unwrap();
    let mut args = vec!["nag", "--template", name];
    args.extend_from_slice(extra);
    deployer(dir, &args, &[])
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(nag(dir.path(), "clean.yaml", CLEAN, &[]).code, Some(0));
    assert_eq!(nag(dir.path(), "open.yaml", OPEN, &[]).code, Some(1));
    assert_eq!(
        nag(dir.path(), "suppressed.yaml", SUPPRESSED, &[]).code,
        Some(0)
    );
    let broken = nag(
        dir.path(),
        "broken.json",
        "{\"Resources\": {\n  \"A\": }",
        &[],
    );
    assert_eq!(broken.code, Some(2));
    assert!(
        broken.stderr.contains("broken.json:2:8: invalid JSON"),
        "{}",
        broken.stderr
    );
    let not_template = nag(dir.path(), "plain.yaml", "Outputs: {}\n", &[]);
    assert_eq!(not_template.code, Some(2));
    assert!(
        not_template
            .stderr
            .contains("plain.yaml:1:1: template has no `Resources` section"),
        "{}",
        not_template.stderr
    );
    assert_eq!(
        deployer(dir.path(), &["nag", "--template", "missing.yaml"], &[]).code,
        Some(2)
    );
    assert_eq!(
        deployer(dir.path(), &["nag", "--format", "xml"], &[]).code,
        Some(2)
    );
    assert_eq!(
        deployer(dir.path(), &["nag", "--prefix", "BAD!"], &[]).code,
        Some(2)
    );
}

#[test]
fn text_report_and_level_filter() {
    let dir = tempfile::tempdir().unwrap();
    let all = nag(dir.path(), "open.yaml", OPEN, &[]).stdout;
    assert!(
        all.contains("open.yaml:2:3: warning[AwsSolutions-VPC3] Acl"),
        "{all}"
    );
    assert!(
        all.contains("open.yaml:3:3: error[AwsSolutions-EC23] Sg"),
        "{all}"
    );
    let errors = nag(dir.path(), "open.yaml", OPEN, &["--level", "error"]).stdout;
    assert!(
        !errors.contains("VPC3") && errors.contains("EC23"),
        "{errors}"
    );
    let verbose = nag(dir.path(), "s.yaml", SUPPRESSED, &["--verbose"]).stdout;
    assert!(
        verbose.contains("suppressed: public web tier behind the ALB only"),
        "{verbose}"
    );
}

#[test]
fn json_and_sarif() {
    let dir = tempfile::tempdir().unwrap();
    let template = serde_json::json!({"Resources": {"Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "web", "SecurityGroupIngress": [{"CidrIp": "0.0.0.0/0"}]}}}}).to_string();
    let report: serde_json::Value = serde_json::from_str(
        &nag(dir.path(), "open.json", &template, &["--format", "json"]).stdout,
    )
    .unwrap();
    assert_eq!(report["summary"]["errors"], 1);
    let output = nag(dir.path(), "open.json", &template, &["--format", "sarif"]);
    assert_eq!(output.code, Some(1));
    let log: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(
        log["$schema"]
            .as_str()
            .is_some_and(|schema| schema.ends_with("sarif-2.1.0.json"))
    );
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "deployer-nag");
    assert!(
        run["tool"]["driver"]["rules"]
            .as_array()
            .is_some_and(|rules| rules.len() > 40)
    );
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "AwsSolutions-EC23");
    assert_eq!(result["level"], "error");
    assert!(
        result["message"]["text"]
            .as_str()
            .is_some_and(|text| text.contains("Sg"))
    );
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "open.json"
    );
}

#[test]
fn explain_and_list_rules() {
    let dir = tempfile::tempdir().unwrap();
    let explain = deployer(dir.path(), &["nag", "--explain", "AwsSolutions-S10"], &[]);
    assert_eq!(explain.code, Some(0));
    assert!(
        explain.stdout.contains("aws:SecureTransport"),
        "{}",
        explain.stdout
    );
    assert_eq!(
        deployer(dir.path(), &["nag", "--explain", "Nope-1"], &[]).code,
        Some(2)
    );
    let list = deployer(dir.path(), &["nag", "--list-rules"], &[]).stdout;
    assert!(
        list.contains("AwsSolutions-IAM5") && list.contains("Nag-SUP1"),
        "{list}"
    );
}

#[test]
fn our_stacks_pass() {
    let dir = tempfile::tempdir().unwrap();
    let current = deployer(dir.path(), &["nag"], &[]);
    assert_eq!(
        current.code,
        Some(0),
        "{}{}",
        current.stdout,
        current.stderr
    );
    assert!(
        current.stdout.starts_with("0 error(s), 0 warning(s), "),
        "{}",
        current.stdout
    );
    let all = deployer(dir.path(), &["nag", "--all-combinations", "--verbose"], &[]);
    assert_eq!(all.code, Some(0), "{}{}", all.stdout, all.stderr);
    assert!(
        all.stdout
            .contains("studio-app-nag-logs/llm-eval-app.template.json"),
        "{}",
        all.stdout
    );
    assert!(all.stdout.contains("suppressed: "), "{}", all.stdout);
}

#[test]
fn cdk_nag_synth_prints_findings_and_keeps_stdout_for_templates() {
    let dir = tempfile::tempdir().unwrap();
    let run = deployer(
        dir.path(),
        &["synth", "--out", "out"],
        &[("CDK_NAG", "true")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("nag (CDK_NAG=true)") && run.stderr.contains("0 error(s)"),
        "{}",
        run.stderr
    );
    assert!(dir.path().join("out/manifest.json").exists());
    let quiet = deployer(dir.path(), &["synth", "--out", "out2"], &[]);
    assert!(!quiet.stderr.contains("nag"), "{}", quiet.stderr);
}

/// `deployer nag ... | head` closed stdout early and `println!` panicked on the broken pipe.
#[test]
fn regression_broken_pipe_does_not_panic() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    // Far more findings than a pipe buffers (64 KiB), so writing must hit the closed pipe.
    let mut text = "Resources:\n".to_owned();
    for idx in 0..2000 {
        text.push_str(&format!("  Sg{idx}:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {{GroupDescription: web, SecurityGroupIngress: [{{CidrIp: 0.0.0.0/0}}]}}\n"));
    }
    std::fs::write(dir.path().join("big.yaml"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .args(["nag", "--template", "big.yaml", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
}

/// With several templates, the first broken one stopped the run: the others were never
/// checked. Now every readable template is checked and reported, each broken one is named,
/// and the exit code is 2.
#[test]
fn regression_broken_template_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("open.yaml"), OPEN).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "Resources: [1\n").unwrap();
    let run = deployer(
        dir.path(),
        &[
            "nag",
            "--template",
            "broken.yaml",
            "open.yaml",
            "missing.yaml",
        ],
        &[],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stdout.contains("open.yaml:"), "{}", run.stdout);
    assert!(run.stdout.contains("AwsSolutions-EC23"), "{}", run.stdout);
    assert!(
        run.stderr.contains("error: broken.yaml:2:1: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("error: missing.yaml: cannot be read: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("error: 2 of 3 templates could not be checked\n"),
        "{}",
        run.stderr
    );
    // Nothing checked: no "0 error(s)" report that reads like a pass.
    let alone = deployer(dir.path(), &["nag", "--template", "broken.yaml"], &[]);
    assert_eq!(alone.code, Some(2));
    assert_eq!(alone.stdout, "");
    assert_eq!(alone.stderr.lines().count(), 1, "{}", alone.stderr);
}

#[test]
fn regression_hostile_templates_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // An endless device is cut at the size limit instead of filling memory.
    let endless = deployer(dir.path(), &["nag", "--template", "/dev/zero"], &[]);
    assert_eq!(endless.code, Some(2), "{}", endless.stderr);
    assert!(
        endless
            .stderr
            .contains("error: /dev/zero is larger than 8 MiB, the limit of --max-template-size"),
        "{}",
        endless.stderr
    );
    let capped = nag(
        dir.path(),
        "clean.yaml",
        CLEAN,
        &["--max-template-size", "100"],
    );
    assert_eq!(capped.code, Some(2));
    assert!(
        capped
            .stderr
            .contains("clean.yaml is larger than 100 bytes"),
        "{}",
        capped.stderr
    );
    let bad_size = nag(
        dir.path(),
        "clean.yaml",
        CLEAN,
        &["--max-template-size", "lots"],
    );
    assert_eq!(bad_size.code, Some(2));
    assert!(
        bad_size.stderr.contains("`lots` is not a size"),
        "{}",
        bad_size.stderr
    );
    for (name, text, message) in [
        (
            "trailing.json",
            "{\"Resources\": {\"Sg\": {\"Type\": \"AWS::EC2::SecurityGroup\",}}}",
            "trailing.json:1:57: invalid JSON: trailing comma",
        ),
        (
            "duplicate.json",
            "{\"Resources\": {\"Sg\": {\"Type\": \"AWS::EC2::SecurityGroup\"}, \"Sg\": {\"Type\": \"X\"}}}",
            "duplicate.json:1:62: duplicate key `Sg`",
        ),
        (
            "binary.yaml",
            "Resources:\n  Sg:\n    Type: !!binary QVdTOjpFQzI6OlNlY3VyaXR5R3JvdXA=\n",
            "binary.yaml:3:11: YAML tag `!!binary` is not supported",
        ),
        (
            "nul.yaml",
            "Resources:\n  Sg:\n    Type: AWS::EC2::Sec\0urityGroup\n",
            "nul.yaml:3:24: NUL byte (U+0000) is not allowed",
        ),
    ] {
        let run = nag(dir.path(), name, text, &[]);
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{name}: {}", run.stderr);
    }
    std::fs::write(
        dir.path().join("latin1.yaml"),
        b"Resources:\n  Sg: {Type: caf\xe9}\n",
    )
    .unwrap();
    let latin1 = deployer(dir.path(), &["nag", "--template", "latin1.yaml"], &[]);
    assert_eq!(latin1.code, Some(2));
    assert!(
        latin1
            .stderr
            .contains("latin1.yaml:2:17: invalid UTF-8 (byte 0xE9)"),
        "{}",
        latin1.stderr
    );
    let deep = format!("{{\"Resources\": {}}}", "[".repeat(80_000));
    let run = nag(dir.path(), "deep.json", &deep, &[]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("deep.json:1:78: nesting deeper than 64 levels"),
        "{}",
        run.stderr
    );
}

#[test]
fn regression_control_characters_do_not_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let template = "{\"Resources\": {\"Sg\\u001b[2J\\r\\n0 error(s), 0 warning(s), 0 suppressed\": {\"Type\": \"AWS::EC2::SecurityGroup\", \"Properties\": {\"GroupDescription\": \"web tier\", \"SecurityGroupIngress\": [{\"CidrIp\": \"0.0.0.0/0\"}]}}}}";
    let run = nag(dir.path(), "forged.json", template, &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        !run.stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{:?}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(
        run.stdout.contains("Sg\\u{1b}[2J\\r\\n0 error(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("1 error(s), 0 warning(s), 0 suppressed\n")
    );
}

#[test]
fn regression_a_fifo_template_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("t.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .args(["nag", "--template", "t.yaml"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let writer = {
        let fifo = fifo.clone();
        // Opening blocks until the deployer opens the FIFO for reading.
        std::thread::spawn(move || std::fs::write(fifo, OPEN))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("deployer nag did not finish reading a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    writer.join().unwrap().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("t.yaml:3:3: error[AwsSolutions-EC23]"),
        "{stdout}"
    );
}

/// Carried over from the nag issue: a template that cannot be parsed was only named on stderr,
/// so a SARIF upload looked like a clean run. JSON and SARIF reports now list it, with its
/// position, even when it is the only template.
#[test]
fn regression_unparsable_template_is_inside_json_and_sarif() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("open.yaml"), OPEN).unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "Resources: [1\n").unwrap();
    let args = |format: &'static str| {
        vec![
            "nag",
            "--format",
            format,
            "--template",
            "open.yaml",
            "broken.yaml",
            "missing.yaml",
        ]
    };
    let json_run = deployer(dir.path(), &args("json"), &[]);
    assert_eq!(json_run.code, Some(2), "{}", json_run.stderr);
    let report: serde_json::Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(report["summary"]["unchecked"], 2);
    assert_eq!(report["unchecked"][0]["file"], "broken.yaml");
    assert_eq!(report["unchecked"][0]["line"], 2);
    assert_eq!(report["unchecked"][1]["file"], "missing.yaml");
    assert_eq!(report["unchecked"][1]["line"], serde_json::Value::Null);
    assert!(
        report["findings"]
            .as_array()
            .is_some_and(|all| !all.is_empty())
    );

    let sarif_run = deployer(dir.path(), &args("sarif"), &[]);
    assert_eq!(sarif_run.code, Some(2), "{}", sarif_run.stderr);
    let log: serde_json::Value = serde_json::from_str(&sarif_run.stdout).unwrap();
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let notifications = invocation["toolExecutionNotifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 2);
    let broken = &notifications[0]["locations"][0]["physicalLocation"];
    assert_eq!(broken["artifactLocation"]["uri"], "broken.yaml");
    assert_eq!(broken["region"]["startLine"], 2);
    assert_eq!(broken["region"]["startColumn"], 1);

    // Alone, the broken template still gets a report (a text report would read like a pass
    // and is left out; JSON and SARIF say what was not checked).
    let alone = deployer(
        dir.path(),
        &["nag", "--format", "sarif", "--template", "broken.yaml"],
        &[],
    );
    assert_eq!(alone.code, Some(2));
    let log: serde_json::Value = serde_json::from_str(&alone.stdout).unwrap();
    assert_eq!(
        log["runs"][0]["invocations"][0]["executionSuccessful"],
        false
    );
}
