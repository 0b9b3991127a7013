//! `deployer nag` run as a real process: exit codes, formats, explain and list.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CLEAN: &str = "Resources:\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {GroupDescription: web tier, SecurityGroupIngress: [{CidrIp: 10.0.0.0/8}]}\n";
const OPEN: &str = "Resources:\n  Acl: {Type: AWS::EC2::NetworkAcl}\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Properties: {GroupDescription: web tier, SecurityGroupIngress: [{CidrIp: 0.0.0.0/0}]}\n";
const SUPPRESSED: &str = "Resources:\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Metadata: {cdk_nag: {rules_to_suppress: [{id: AwsSolutions-EC23, reason: public web tier behind the ALB only}]}}\n    Properties: {GroupDescription: web tier, SecurityGroupIngress: [{CidrIp: 0.0.0.0/0}]}\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path
}

fn deployer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .output()
        .expect("run deployer")
}

fn nag(path: &Path, extra: &[&str]) -> Output {
    let path = path.to_str().expect("utf-8 temp path");
    let mut args = vec!["nag", "--template", path];
    args.extend_from_slice(extra);
    deployer(&args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        nag(&write(dir.path(), "clean.yaml", CLEAN), &[])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        nag(&write(dir.path(), "open.yaml", OPEN), &[])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        nag(&write(dir.path(), "suppressed.yaml", SUPPRESSED), &[])
            .status
            .code(),
        Some(0)
    );
    let broken = nag(
        &write(dir.path(), "broken.json", "{\"Resources\": {\n  \"A\": }"),
        &[],
    );
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken.json:2:8: invalid JSON"),
        "{broken:?}"
    );
    let not_template = nag(&write(dir.path(), "plain.yaml", "Outputs: {}\n"), &[]);
    assert_eq!(not_template.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&not_template.stderr)
            .contains("plain.yaml:1:1: template has no `Resources` section")
    );
    assert_eq!(
        deployer(&["nag", "--template", "/nonexistent/x.yaml"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(deployer(&["nag"]).status.code(), Some(2));
    assert_eq!(deployer(&["nag", "--format", "xml"]).status.code(), Some(2));
}

#[test]
fn text_report_and_level_filter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), "open.yaml", OPEN);
    let all = stdout(&nag(&path, &[]));
    assert!(all.contains("warning[AwsSolutions-VPC3] Acl"), "{all}");
    assert!(
        all.contains("open.yaml:3:3: error[AwsSolutions-EC23] Sg"),
        "{all}"
    );
    let errors = stdout(&nag(&path, &["--level", "error"]));
    assert!(!errors.contains("VPC3"), "{errors}");
    let verbose = stdout(&nag(
        &write(dir.path(), "s.yaml", SUPPRESSED),
        &["--verbose"],
    ));
    assert!(
        verbose.contains("suppressed: public web tier behind the ALB only"),
        "{verbose}"
    );
}

#[test]
fn json_and_sarif() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(dir.path(), "open.json", &serde_json::json!({"Resources": {"Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "web", "SecurityGroupIngress": [{"CidrIp": "0.0.0.0/0"}]}}}}).to_string());
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&nag(&path, &["--format", "json"]))).expect("json report");
    assert_eq!(report["summary"]["errors"], 1);
    let output = nag(&path, &["--format", "sarif"]);
    assert_eq!(output.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("sarif log");
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
    assert!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with("open.json"))
    );
}

#[test]
fn explain_and_list_rules() {
    let explain = deployer(&["nag", "--explain", "AwsSolutions-S10"]);
    assert_eq!(explain.status.code(), Some(0));
    assert!(stdout(&explain).contains("aws:SecureTransport"));
    assert_eq!(
        deployer(&["nag", "--explain", "Nope-1"]).status.code(),
        Some(2)
    );
    let list = stdout(&deployer(&["nag", "--list-rules"]));
    assert!(
        list.contains("AwsSolutions-IAM5") && list.contains("Nag-SUP1"),
        "{list}"
    );
}
