//! The one-click install: `cfn_bootstrap.yaml` (cfn-lint, the rule pack, its inline buildspec),
//! the build's answer to CloudFormation (`deployer bootstrap respond | run` against a local
//! stand-in for the response URL), the template's inline Lambda run under CPython 3.14, and
//! `buildspec.yml`'s phases run in a shell with the environment CodeBuild gives them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::servers::{Answer, CodeBuildDouble, Received, ResponseUrl};
use model_doubles::moto::Moto;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template_path() -> PathBuf {
    repo_root().join("cfn_bootstrap.yaml")
}

fn template() -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(template_path()).unwrap()).unwrap()
}

fn resource_property<'a>(
    template: &'a serde_yaml::Value,
    resource: &str,
    path: &[&str],
) -> &'a serde_yaml::Value {
    let mut value = &template["Resources"][resource]["Properties"];
    for key in path {
        value = &value[*key];
    }
    value
}

fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("{name} not found: set {var} or put it on PATH; `bash scripts/test.sh` installs it")
    })
}

// ---------------------------------------------------------------------------------------------
// The template

#[test]
fn template_passes_cfn_lint() {
    let output = Command::new(tool("CFN_LINT", "cfn-lint"))
        .args(["--format", "parseable", "--"])
        .arg(template_path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cfn-lint findings:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn template_passes_the_rule_pack() {
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["nag", "--template"])
        .arg(template_path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("0 error(s), 0 warning(s)"),
        "unsuppressed findings:\n{stdout}"
    );
}

#[test]
fn inline_buildspec_is_buildspec_yml() {
    let template = template();
    let inline = resource_property(&template, "Project", &["Source", "BuildSpec"])
        .as_str()
        .unwrap();
    let file = std::fs::read_to_string(repo_root().join("buildspec.yml")).unwrap();
    assert_eq!(
        inline, file,
        "cfn_bootstrap.yaml's inline buildspec must be a copy of buildspec.yml"
    );
}

/// The build gets the deployer's settings under the names the deployer reads everywhere.
#[test]
fn deployment_environment_uses_the_deployers_names() {
    let template = template();
    let environment = resource_property(&template, "Deployment", &["Environment"])
        .as_mapping()
        .unwrap();
    let help = run_deployer(&["bootstrap", "run", "--help"], &[], None);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for key in environment.keys() {
        let key = key.as_str().unwrap();
        assert!(
            help.contains(&format!("[env: {key}]")) || help.contains(key),
            "`deployer bootstrap run --help` does not document {key}:\n{help}"
        );
    }
    for parameter in ["DeployPromptApp", "DeploySageMakerDomain", "PurgeOnDelete"] {
        let allowed = &template["Parameters"][parameter]["AllowedValues"];
        assert_eq!(
            allowed,
            &serde_yaml::from_str::<serde_yaml::Value>("[\"yes\", \"no\"]").unwrap()
        );
    }
    for (name, parameter) in template["Parameters"].as_mapping().unwrap() {
        let description = parameter["Description"].as_str().unwrap_or("");
        assert!(description.len() > 20, "{name:?} has no real description");
    }
}

// ---------------------------------------------------------------------------------------------
// The build's answer

fn request_env(url: &str) -> Vec<(String, String)> {
    [
        ("CFN_RESPONSE_URL", url),
        (
            "CFN_STACK_ID",
            "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid",
        ),
        ("CFN_REQUEST_ID", "req-1"),
        ("CFN_LOGICAL_RESOURCE_ID", "Deployment"),
        ("CFN_PHYSICAL_RESOURCE_ID", "deployment-llm-eval"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// Runs the deployer with only `env` (and PATH, HOME, TMPDIR) set.
fn run_deployer(args: &[&str], env: &[(String, String)], tmp: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_deployer"));
    command.args(args).env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    if let Some(tmp) = tmp {
        command.env("TMPDIR", tmp);
    }
    command.envs(env.iter().map(|(key, value)| (key, value)));
    command.output().unwrap()
}

fn the_one_put(url: &ResponseUrl) -> Received {
    let received = url.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let put = received.into_iter().next().unwrap();
    assert_eq!(put.method, "PUT");
    // CloudFormation's presigned URL is signed for an empty content type.
    assert_eq!(put.header("content-type"), Some(""));
    assert!(
        put.uri.contains("X-Amz-Signature=SIGNATURE-SECRET"),
        "{}",
        put.uri
    );
    put
}

#[test]
fn respond_success_sends_what_cloudformation_expects() {
    let url = ResponseUrl::start(&[]);
    let out = run_deployer(
        &[
            "bootstrap",
            "respond",
            "--status",
            "success",
            "--reason",
            "deployed",
            "--data",
            "AppUrl=https://d111.cloudfront.net",
        ],
        &request_env(&url.url()),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let put = the_one_put(&url);
    assert_eq!(
        put.header("content-length"),
        Some(put.body.len().to_string().as_str())
    );
    assert_eq!(
        put.json(),
        json!({"Status": "SUCCESS", "Reason": "deployed", "PhysicalResourceId": "deployment-llm-eval",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid",
            "RequestId": "req-1", "LogicalResourceId": "Deployment", "NoEcho": false,
            "Data": {"AppUrl": "https://d111.cloudfront.net"}})
    );
}

#[test]
fn run_reports_a_setting_it_cannot_use() {
    let url = ResponseUrl::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let mut env = request_env(&url.url());
    env.push(("DEPLOY_STACK_PREFIX".into(), "Bad_Prefix".into()));
    env.push(("CODEBUILD_BUILD_ID".into(), "llm-eval-deployer:b-7".into()));
    let out = run_deployer(&["bootstrap", "run"], &env, Some(tmp.path()));
    assert_eq!(out.status.code(), Some(1));
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(
        body["Reason"],
        "invalid setting: DEPLOY_STACK_PREFIX: stack prefix `Bad_Prefix` is invalid; use 1-20 lowercase letters, digits and `-`, starting with a letter (CodeBuild build llm-eval-deployer:b-7)"
    );
    assert_eq!(body["PhysicalResourceId"], "deployment-llm-eval");
}

#[test]
fn respond_gives_up_on_a_url_that_never_answers() {
    let url = ResponseUrl::start(&[Answer::Hang, Answer::Hang]);
    let started = Instant::now();
    let out = run_deployer(
        &[
            "bootstrap",
            "respond",
            "--status",
            "failed",
            "--reason",
            "x",
            "--response-timeout",
            "1",
            "--response-attempts",
            "2",
        ],
        &request_env(&url.url()),
        None,
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Two 1-second attempts and a 1-second pause, with room for a slow machine.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(url.received().len(), 2);
    assert!(
        stderr
            .contains("could not deliver the response to 127.0.0.1 after 2 attempt(s): timed out"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SIGNATURE-SECRET"),
        "the URL leaked: {stderr}"
    );
}

#[test]
fn respond_retries_server_errors_and_stops_at_a_refusal() {
    let url = ResponseUrl::start(&[Answer::Status(503)]);
    let out = run_deployer(
        &["bootstrap", "respond", "--status", "success"],
        &request_env(&url.url()),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(url.received().len(), 2);

    let url = ResponseUrl::start(&[Answer::Status(403)]);
    let out = run_deployer(
        &["bootstrap", "respond", "--status", "success"],
        &request_env(&url.url()),
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(url.received().len(), 1, "a 403 is final");
    assert!(
        stderr.contains("refused the response: HTTP 403"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("SIGNATURE-SECRET"),
        "the URL leaked: {stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// The inline Lambda, under CPython 3.14 (the function's `python3.14` runtime).
//
// How close this is to Lambda: the code is the template's `ZipFile` text, saved as `index.py`
// and imported as the module `index` from its own directory, as the runtime does; `handler`
// gets the event as parsed JSON and a context object with LambdaContext's attributes and
// `get_remaining_time_in_millis`; the environment has the function's variables, credentials
// and region, and only those. boto3 is a pinned release of the SDK the runtime bundles (the
// runtime's own version moves with its updates). Not reproduced: the runtime interface client
// (the invoke loop and its logging format), the 15-minute limit, and retries of asynchronous
// (EventBridge) invocations.

const PROJECT: &str = "llm-eval-deployer";
const CACHE_BUCKET: &str = "boot-cachebucket-1";

fn lambda_python() -> PathBuf {
    if let Some(path) = std::env::var_os("LAMBDA_PYTHON") {
        return PathBuf::from(path);
    }
    let cached = model_doubles::moto::cache_dir().join("lambda-python3.14/python");
    assert!(
        cached.is_file(),
        "CPython 3.14 not found (LAMBDA_PYTHON, {}): run scripts/test.sh, which unpacks it",
        cached.display()
    );
    cached
}

/// Runs the invoking script of the module docs.
const INVOKE: &str = r#"
import importlib, json, sys, time, uuid

class LambdaContext:
    def __init__(self, timeout_ms):
        self.function_name = "llm-eval-deployer-trigger"
        self.function_version = "$LATEST"
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:llm-eval-deployer-trigger"
        self.memory_limit_in_mb = "256"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/llm-eval-deployer-trigger"
        self.log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

sys.path.insert(0, sys.argv[1])
with open(sys.argv[2]) as file:
    event = json.load(file)
result = importlib.import_module("index").handler(event, LambdaContext(float(sys.argv[3])))
print(json.dumps(result))
"#;

struct Lambda {
    dir: tempfile::TempDir,
}

impl Lambda {
    fn new() -> Lambda {
        let dir = tempfile::tempdir().unwrap();
        let template = template();
        let code = resource_property(&template, "Function", &["Code", "ZipFile"])
            .as_str()
            .unwrap();
        std::fs::create_dir(dir.path().join("code")).unwrap();
        std::fs::write(dir.path().join("code/index.py"), code).unwrap();
        std::fs::write(dir.path().join("invoke.py"), INVOKE).unwrap();
        let runtime = resource_property(&template, "Function", &["Runtime"]);
        assert_eq!(
            runtime.as_str(),
            Some("python3.14"),
            "update lambda-python.sh with the runtime"
        );
        Lambda { dir }
    }

    /// Invokes the handler with `event`; `codebuild` and `s3` are the endpoints of those APIs.
    fn invoke(&self, event: &Json, codebuild: &str, s3: &str) -> Output {
        let event_file = self.dir.path().join("event.json");
        std::fs::write(&event_file, event.to_string()).unwrap();
        Command::new(lambda_python())
            .arg(self.dir.path().join("invoke.py"))
            .arg(self.dir.path().join("code"))
            .arg(&event_file)
            .arg("30000")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            .env("AWS_LAMBDA_FUNCTION_NAME", "llm-eval-deployer-trigger")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_python3.14")
            .env("AWS_ENDPOINT_URL_CODEBUILD", codebuild)
            .env("AWS_ENDPOINT_URL_S3", s3)
            .env("PROJECT_NAME", PROJECT)
            .env("CACHE_BUCKET", CACHE_BUCKET)
            .output()
            .unwrap()
    }

    /// Runs boto3 code (`client` is a function of a service name) against moto, to set it up.
    fn boto3(&self, moto: &Moto, code: &str) {
        let script = format!(
            "import boto3\ndef client(name):\n    return boto3.client(name, endpoint_url={:?}, region_name='us-east-1')\n{code}\n",
            moto.url()
        );
        let out = Command::new(lambda_python())
            .args(["-c", &script])
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "handler failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn cfn_event(kind: &str, url: &ResponseUrl, physical: Option<&str>) -> Json {
    let mut event = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:llm-eval-deployer-trigger",
        "ResponseURL": url.url(),
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "Deployment",
        "ResourceType": "Custom::Deployment",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:llm-eval-deployer-trigger",
            "ServiceTimeout": "3600",
            "Environment": {"DEPLOY_STACK_PREFIX": "llm-eval", "DEPLOY_PROMPT_APP": "yes",
                "DEPLOY_SAGEMAKER_DOMAIN": "no", "DEPLOY_STUDIO_GIT_REPO": "https://github.com/aws/amazon-sagemaker-examples.git",
                "DEPLOY_PURGE_ON_DELETE": "no"},
            "Source": ["https://github.com/example/llm-eval", "main", ""],
            "RedeployToken": "1"
        }
    });
    if let Some(physical) = physical {
        event["PhysicalResourceId"] = physical.into();
    }
    event
}

fn variables(start_build: &Json) -> Vec<(String, String)> {
    start_build["environmentVariablesOverride"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| {
            assert_eq!(var["type"], "PLAINTEXT");
            (
                var["name"].as_str().unwrap().to_owned(),
                var["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn variable<'a>(vars: &'a [(String, String)], name: &str) -> &'a str {
    vars.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("{name} not passed: {vars:?}"))
}

#[test]
fn lambda_create_starts_an_up_build_with_the_request() {
    let lambda = Lambda::new();
    let url = ResponseUrl::start(&[]);
    let codebuild = CodeBuildDouble::start(None);
    succeeded(&lambda.invoke(
        &cfn_event("Create", &url, None),
        codebuild.url(),
        codebuild.url(),
    ));
    let calls = codebuild.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (operation, request) = &calls[0];
    assert_eq!(operation, "StartBuild");
    assert_eq!(request["projectName"], PROJECT);
    assert_eq!(request["buildspecOverride"], "buildspec.yml");
    let vars = variables(request);
    assert_eq!(variable(&vars, "DEPLOYER_ACTION"), "up");
    assert_eq!(variable(&vars, "DEPLOY_STACK_PREFIX"), "llm-eval");
    assert_eq!(variable(&vars, "DEPLOY_SAGEMAKER_DOMAIN"), "no");
    assert_eq!(variable(&vars, "CFN_RESPONSE_URL"), url.url());
    assert_eq!(variable(&vars, "CFN_REQUEST_ID"), "req-1");
    assert_eq!(variable(&vars, "CFN_LOGICAL_RESOURCE_ID"), "Deployment");
    assert_eq!(
        variable(&vars, "CFN_PHYSICAL_RESOURCE_ID"),
        "deployment-llm-eval"
    );
    assert_eq!(
        variable(&vars, "CFN_STACK_ID"),
        "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid"
    );
    // The build answers, not the function.
    assert!(url.received().is_empty());
}

#[test]
fn lambda_delete_starts_a_down_build_for_the_same_resource() {
    let lambda = Lambda::new();
    let url = ResponseUrl::start(&[]);
    let codebuild = CodeBuildDouble::start(None);
    let event = cfn_event("Delete", &url, Some("deployment-llm-eval"));
    succeeded(&lambda.invoke(&event, codebuild.url(), codebuild.url()));
    let calls = codebuild.calls();
    let vars = variables(&calls[0].1);
    assert_eq!(variable(&vars, "DEPLOYER_ACTION"), "down");
    assert_eq!(
        variable(&vars, "CFN_PHYSICAL_RESOURCE_ID"),
        "deployment-llm-eval"
    );
    assert!(url.received().is_empty());
}

#[test]
fn lambda_reports_when_there_is_no_project_to_build() {
    let moto = Moto::start_blocking();
    let lambda = Lambda::new();

    let url = ResponseUrl::start(&[]);
    succeeded(&lambda.invoke(&cfn_event("Create", &url, None), moto.url(), moto.url()));
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "not-started-req-1");
    let reason = body["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "could not start the deployer up build of CodeBuild project llm-eval-deployer: "
        ) && reason.contains("ResourceNotFoundException"),
        "{reason}"
    );

    // CloudFormation's rollback then deletes what never started: nothing to do, at once.
    let url = ResponseUrl::start(&[]);
    let event = cfn_event("Delete", &url, Some("not-started-req-1"));
    succeeded(&lambda.invoke(&event, moto.url(), moto.url()));
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "SUCCESS");
    assert_eq!(body["PhysicalResourceId"], "not-started-req-1");

    // A delete of a deployment whose project is gone fails at once, with the reason.
    let url = ResponseUrl::start(&[]);
    let event = cfn_event("Delete", &url, Some("deployment-llm-eval"));
    succeeded(&lambda.invoke(&event, moto.url(), moto.url()));
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["PhysicalResourceId"], "deployment-llm-eval");
    assert!(
        body["Reason"]
            .as_str()
            .unwrap()
            .starts_with("could not start the deployer down build"),
        "{body}"
    );
}

/// A build as BatchGetBuilds returns it, with the variables the function passed.
fn ended_build(action: &str, url: &ResponseUrl, phases: Json, buildspec: &str) -> Json {
    json!({
        "id": "llm-eval-deployer:b-9",
        "buildStatus": "FAILED",
        "projectName": PROJECT,
        "phases": phases,
        "environment": {"environmentVariables": [
            {"name": "DEPLOY_STACK_PREFIX", "value": "llm-eval", "type": "PLAINTEXT"},
            {"name": "DEPLOYER_ACTION", "value": action, "type": "PLAINTEXT"},
            {"name": "CFN_RESPONSE_URL", "value": url.url(), "type": "PLAINTEXT"},
            {"name": "CFN_STACK_ID", "value": "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid", "type": "PLAINTEXT"},
            {"name": "CFN_REQUEST_ID", "value": "req-2", "type": "PLAINTEXT"},
            {"name": "CFN_LOGICAL_RESOURCE_ID", "value": "Deployment", "type": "PLAINTEXT"},
            {"name": "CFN_PHYSICAL_RESOURCE_ID", "value": "deployment-llm-eval", "type": "PLAINTEXT"},
            {"name": "BOOTSTRAP_BUILDSPEC", "value": buildspec, "type": "PLAINTEXT"}
        ]}
    })
}

fn build_event() -> Json {
    json!({
        "version": "0",
        "id": "c030038d-8c4d-6141-9545-00ff7b7153ea",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:codebuild:us-east-1:123456789012:build/llm-eval-deployer:b-9"],
        "detail": {
            "build-status": "FAILED",
            "project-name": PROJECT,
            "build-id": "arn:aws:codebuild:us-east-1:123456789012:build/llm-eval-deployer:b-9",
            "current-phase": "COMPLETED",
            "version": "1"
        }
    })
}

/// The delete whose source is gone: the build fails downloading it, before any buildspec
/// command could answer; the function's rule on the project's builds answers instead.
#[test]
fn lambda_reports_a_down_build_whose_source_is_missing() {
    let lambda = Lambda::new();
    let url = ResponseUrl::start(&[]);
    let phases = json!([
        {"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "QUEUED", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "PROVISIONING", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "DOWNLOAD_SOURCE", "phaseStatus": "CLIENT_ERROR", "contexts": [
            {"statusCode": "CLIENT_ERROR", "message": "NoSuchKey: The specified key does not exist. for primary source and source version arn:aws:s3:::src-bucket/llm-eval.zip"}]},
        {"phaseType": "FINALIZING", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "COMPLETED"}
    ]);
    let codebuild = CodeBuildDouble::start(Some(ended_build("down", &url, phases, "source")));
    succeeded(&lambda.invoke(&build_event(), codebuild.url(), codebuild.url()));
    assert_eq!(codebuild.calls()[0].0, "BatchGetBuilds");
    assert_eq!(
        codebuild.calls()[0].1,
        json!({"ids": ["arn:aws:codebuild:us-east-1:123456789012:build/llm-eval-deployer:b-9"]})
    );
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(body["RequestId"], "req-2");
    assert_eq!(body["PhysicalResourceId"], "deployment-llm-eval");
    assert_eq!(
        body["Reason"],
        "the deployer down build llm-eval-deployer:b-9 ended FAILED before the deployer finished: DOWNLOAD_SOURCE CLIENT_ERROR: CLIENT_ERROR NoSuchKey: The specified key does not exist. for primary source and source version arn:aws:s3:::src-bucket/llm-eval.zip. The stacks may still be deployed: fix the cause and delete this stack again, or run `deployer down`"
    );
}

#[test]
fn lambda_falls_back_to_the_inline_buildspec() {
    let lambda = Lambda::new();
    let url = ResponseUrl::start(&[]);
    let phases = json!([
        {"phaseType": "DOWNLOAD_SOURCE", "phaseStatus": "FAILED", "contexts": [
            {"statusCode": "YAML_FILE_ERROR", "message": "stat /codebuild/output/src1/src/buildspec.yml: no such file or directory"}]}
    ]);
    let codebuild = CodeBuildDouble::start(Some(ended_build("up", &url, phases, "source")));
    succeeded(&lambda.invoke(&build_event(), codebuild.url(), codebuild.url()));
    let calls = codebuild.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let (operation, request) = &calls[1];
    assert_eq!(operation, "StartBuild");
    assert!(
        request.get("buildspecOverride").is_none(),
        "the project's inline buildspec: {request}"
    );
    let vars = variables(request);
    assert_eq!(variable(&vars, "BOOTSTRAP_BUILDSPEC"), "inline");
    assert_eq!(variable(&vars, "CFN_REQUEST_ID"), "req-2");
    assert!(url.received().is_empty(), "the new build answers");

    // The inline buildspec missing too cannot loop: the failure is reported.
    let url = ResponseUrl::start(&[]);
    let phases = json!([
        {"phaseType": "DOWNLOAD_SOURCE", "phaseStatus": "FAILED", "contexts": [
            {"statusCode": "YAML_FILE_ERROR", "message": "stat buildspec.yml: no such file or directory"}]}
    ]);
    let codebuild = CodeBuildDouble::start(Some(ended_build("up", &url, phases, "inline")));
    succeeded(&lambda.invoke(&build_event(), codebuild.url(), codebuild.url()));
    assert_eq!(codebuild.calls().len(), 1);
    assert_eq!(the_one_put(&url).json()["Status"], "FAILED");
}

#[test]
fn lambda_leaves_builds_whose_deployer_finished_to_them() {
    let lambda = Lambda::new();
    let url = ResponseUrl::start(&[]);
    let phases = json!([
        {"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "BUILD", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "FINALIZING", "phaseStatus": "FAILED", "contexts": [{"statusCode": "X", "message": "cache upload"}]}
    ]);
    let codebuild = CodeBuildDouble::start(Some(ended_build("up", &url, phases, "source")));
    succeeded(&lambda.invoke(&build_event(), codebuild.url(), codebuild.url()));
    assert!(url.received().is_empty());
}

#[test]
fn lambda_cleanup_empties_the_cache_bucket() {
    let moto = Moto::start_blocking();
    let lambda = Lambda::new();
    lambda.boto3(
        &moto,
        &format!(
            "s3 = client('s3')\ns3.create_bucket(Bucket={CACHE_BUCKET:?})\nfor n in range(5):\n    s3.put_object(Bucket={CACHE_BUCKET:?}, Key='cache/%d' % n, Body=b'x')\n\
             client('codebuild').create_project(name={PROJECT:?}, source={{'type': 'S3', 'location': 'src-bucket/llm-eval.zip'}}, \
             artifacts={{'type': 'NO_ARTIFACTS'}}, environment={{'type': 'LINUX_CONTAINER', 'image': 'aws/codebuild/amazonlinux-x86_64-standard:5.0', \
             'computeType': 'BUILD_GENERAL1_SMALL'}}, serviceRole='arn:aws:iam::123456789012:role/build')"
        ),
    );
    let url = ResponseUrl::start(&[]);
    let mut event = cfn_event("Delete", &url, Some("cleanup-boot"));
    event["ResourceType"] = "Custom::Cleanup".into();
    event["LogicalResourceId"] = "Cleanup".into();
    succeeded(&lambda.invoke(&event, moto.url(), moto.url()));
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(
        body["Reason"],
        format!("deleted 5 cache objects from {CACHE_BUCKET}")
    );
    lambda.boto3(
        &moto,
        &format!("assert client('s3').list_objects_v2(Bucket={CACHE_BUCKET:?})['KeyCount'] == 0"),
    );
}

// ---------------------------------------------------------------------------------------------
// buildspec.yml, phase by phase, in bash with CodeBuild's environment

/// What a local run of the buildspec did.
struct BuildRun {
    /// `PHASE STATUS` per phase that ran.
    phases: Vec<String>,
    output: String,
}

/// Runs `buildspec.yml` as CodeBuild does with version 0.2: every command in one shell (so
/// `export` and `cd` carry over), phases in order; a failing command ends its phase; a failed
/// INSTALL or PRE_BUILD skips the rest, a failed BUILD still runs POST_BUILD; buildspec
/// variables apply only where the project or the StartBuild call set none.
fn run_buildspec(env: &[(String, String)], work: &Path, src: &Path) -> BuildRun {
    let buildspec: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("buildspec.yml")).unwrap())
            .unwrap();
    assert_eq!(buildspec["version"], serde_yaml::Value::from(0.2));
    assert_eq!(buildspec["env"]["shell"].as_str(), Some("bash"));
    let mut script = String::from("set +e\nexport CODEBUILD_BUILD_SUCCEEDING=1\n");
    for (name, value) in buildspec["env"]["variables"].as_mapping().unwrap() {
        let (name, value) = (name.as_str().unwrap(), value.as_str().unwrap());
        script.push_str(&format!(
            "if [ -z \"${{{name}+set}}\" ]; then export {name}='{value}'; fi\n"
        ));
    }
    script.push_str(
        "phase() { local name=$1; shift; local file; for file in \"$@\"; do . \"$file\"; local status=$?; \
         if [ $status -ne 0 ]; then echo \"$name FAILED\" >> \"$PHASES\"; echo \"[command $file of $name exited $status]\"; \
         export CODEBUILD_BUILD_SUCCEEDING=0; return 1; fi; done; echo \"$name SUCCEEDED\" >> \"$PHASES\"; }\n",
    );
    let mut calls = Vec::new();
    for name in ["install", "pre_build", "build", "post_build"] {
        let Some(commands) = buildspec["phases"][name]["commands"].as_sequence() else {
            calls.push(String::from("true"));
            continue;
        };
        let mut files = Vec::new();
        for (index, command) in commands.iter().enumerate() {
            let file = work.join(format!("{name}-{index}.sh"));
            std::fs::write(&file, command.as_str().unwrap()).unwrap();
            files.push(format!("'{}'", file.display()));
        }
        calls.push(format!("phase {} {}", name.to_uppercase(), files.join(" ")));
    }
    script.push_str(&format!(
        "if {install}; then if {pre_build}; then {build}; {post_build}; fi; fi\n",
        install = calls[0],
        pre_build = calls[1],
        build = calls[2],
        post_build = calls[3],
    ));
    let phases_file = work.join("phases");
    // Tools of the test (stand-ins for rustc and cargo) come first, as an image's would.
    let path = std::env::join_paths(
        env.iter()
            .filter(|(key, _)| key == "TEST_TOOLS")
            .map(|(_, dir)| PathBuf::from(dir))
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let mut command = Command::new("bash");
    command
        .args(["-c", &script])
        .current_dir(src)
        .env_clear()
        .env("PATH", path)
        .env("HOME", work)
        .env("TMPDIR", work)
        .env("PHASES", &phases_file)
        .env("CODEBUILD_SRC_DIR", src)
        .env("CODEBUILD_BUILD_ID", "llm-eval-deployer:local-1")
        .env(
            "CODEBUILD_BUILD_ARN",
            "arn:aws:codebuild:us-east-1:123456789012:build/llm-eval-deployer:local-1",
        )
        .env("CODEBUILD_BUILD_NUMBER", "1")
        .env("CODEBUILD_INITIATOR", "rule/llm-eval-deployer-trigger")
        .env("CODEBUILD_START_TIME", "1767225600000")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .envs(env.iter().map(|(key, value)| (key, value)));
    let out = command.output().unwrap();
    BuildRun {
        phases: std::fs::read_to_string(&phases_file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The build uses the deployer this test build made, so no toolchain and no second build.
fn prebuilt() -> (String, String) {
    ("DEPLOYER_BIN".into(), env!("CARGO_BIN_EXE_deployer").into())
}

#[test]
fn buildspec_reports_a_build_that_cannot_deploy() {
    let work = tempfile::tempdir().unwrap();
    let url = ResponseUrl::start(&[]);
    let mut env = request_env(&url.url());
    env.push(prebuilt());
    env.push(("DEPLOYER_ACTION".into(), "sideways".into()));
    let run = run_buildspec(&env, work.path(), &repo_root().canonicalize().unwrap());
    assert_eq!(
        run.phases,
        ["INSTALL SUCCEEDED", "PRE_BUILD SUCCEEDED", "BUILD FAILED"],
        "{}",
        run.output
    );
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "FAILED");
    assert_eq!(
        body["Reason"],
        "DEPLOYER_ACTION: `sideways` is not an action; expected up or down (CodeBuild build llm-eval-deployer:local-1)"
    );
}

/// Without DEPLOYER_BIN the build finds the pinned toolchain and builds the deployer in release
/// mode; rustc and cargo are stand-ins here (the real build is what the test build made), so
/// the commands and the binary's path are what is checked.
#[test]
fn buildspec_builds_the_deployer_when_none_is_given() {
    let work = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let tools = work.path().join("tools");
    std::fs::create_dir(&tools).unwrap();
    let script = |name: &str, body: &str| {
        let file = tools.join(name);
        std::fs::write(&file, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mut permissions = std::fs::metadata(&file).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&file, permissions).unwrap();
    };
    script("rustc", "echo 'rustc 1.95.0 (59807616e 2026-04-14)'");
    script(
        "cargo",
        &format!(
            "echo \"$@\" > \"$TMPDIR/cargo-args\"\nmkdir -p target/release && cp '{}' target/release/deployer",
            env!("CARGO_BIN_EXE_deployer")
        ),
    );
    let url = ResponseUrl::start(&[]);
    let mut env = request_env(&url.url());
    env.push(("TEST_TOOLS".into(), tools.display().to_string()));
    env.push(("DEPLOYER_ACTION".into(), "sideways".into()));
    let run = run_buildspec(&env, work.path(), src.path());
    assert_eq!(
        run.phases,
        ["INSTALL SUCCEEDED", "PRE_BUILD SUCCEEDED", "BUILD FAILED"],
        "{}",
        run.output
    );
    assert!(run.output.contains("Rust 1.95.0 found"), "{}", run.output);
    assert_eq!(
        std::fs::read_to_string(work.path().join("cargo-args"))
            .unwrap()
            .trim(),
        "build --release --locked -p deployer"
    );
    assert!(src.path().join("target/release/deployer").is_file());
    assert_eq!(the_one_put(&url).json()["Status"], "FAILED");
}

/// The environment of a build against `moto` (the network stack only: what moto can deploy).
fn moto_build_env(moto: &Moto, url: &ResponseUrl, action: &str) -> Vec<(String, String)> {
    let mut env = request_env(&url.url());
    env.push(prebuilt());
    for (key, value) in [
        ("DEPLOYER_ACTION", action),
        ("DEPLOY_STACK_PREFIX", "llm-eval"),
        ("DEPLOY_PROMPT_APP", "no"),
        ("DEPLOY_SAGEMAKER_DOMAIN", "no"),
        ("DEPLOY_PURGE_ON_DELETE", "no"),
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    env
}

/// The create and the delete as CodeBuild runs them, with the real `deployer up` and `down`
/// (the binary this test build made) against moto. moto deploys the network stack but cannot
/// delete it, which makes a real failing delete: its reason must reach the response URL.
#[test]
fn buildspec_create_and_failing_delete_against_moto() {
    let moto = Moto::start_blocking();
    let src = repo_root().canonicalize().unwrap();

    let work = tempfile::tempdir().unwrap();
    let url = ResponseUrl::start(&[]);
    let create = run_buildspec(&moto_build_env(&moto, &url, "up"), work.path(), &src);
    assert_eq!(
        create.phases,
        [
            "INSTALL SUCCEEDED",
            "PRE_BUILD SUCCEEDED",
            "BUILD SUCCEEDED"
        ],
        "{}",
        create.output
    );
    assert!(
        create.output.contains("llm-eval-network: CREATE_COMPLETE"),
        "{}",
        create.output
    );
    let put = the_one_put(&url);
    assert_eq!(put.method, "PUT");
    assert_eq!(put.header("content-type"), Some(""));
    let body = put.json();
    assert_eq!(body["Status"], "SUCCESS", "{body}");
    assert_eq!(
        body["Reason"],
        "deployer up succeeded (CodeBuild build llm-eval-deployer:local-1)"
    );
    assert_eq!(body["PhysicalResourceId"], "deployment-llm-eval");
    assert_eq!(body["Data"], serde_json::json!({}));

    let work = tempfile::tempdir().unwrap();
    let url = ResponseUrl::start(&[]);
    let delete = run_buildspec(&moto_build_env(&moto, &url, "down"), work.path(), &src);
    assert_eq!(
        delete.phases,
        ["INSTALL SUCCEEDED", "PRE_BUILD SUCCEEDED", "BUILD FAILED"],
        "{}",
        delete.output
    );
    let body = the_one_put(&url).json();
    assert_eq!(body["Status"], "FAILED", "{body}");
    let reason = body["Reason"].as_str().unwrap();
    assert!(reason.starts_with("deployer down failed: "), "{reason}");
    assert!(reason.contains("llm-eval-network"), "{reason}");
    assert!(
        reason.ends_with("(CodeBuild build llm-eval-deployer:local-1)"),
        "{reason}"
    );
    // The reason is the deployer's own root-cause line, as the build log shows it.
    let error_line = delete
        .output
        .lines()
        .filter_map(|line| line.strip_prefix("error: "))
        .find(|line| line.contains("llm-eval-network"))
        .unwrap_or_else(|| panic!("no error line in:\n{}", delete.output));
    assert!(reason.contains(error_line), "{reason}\nvs\n{error_line}");
}
