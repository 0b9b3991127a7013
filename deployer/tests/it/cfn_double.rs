//! A scripted CloudFormation double: a small local HTTP server speaking CloudFormation's real
//! AWS Query protocol (form-encoded `Action=...` requests, XML responses and errors) for what
//! moto cannot express: failed resources, rollback events, `ROLLBACK_COMPLETE`,
//! `UPDATE_ROLLBACK_FAILED`, `DELETE_FAILED`. One stack, driven by a [`Script`]; the deployer's
//! real SDK client talks to it through `AWS_ENDPOINT_URL_CLOUDFORMATION`, while STS and the
//! other services go to moto.
//!
//! [`Stacks`] is the happy path for every stack at once, which moto cannot run for the app
//! stack (it skips CloudFront, Cognito and Secrets Manager and rejects `GetAtt` to them): each
//! change set succeeds, the stack keeps the template and parameters it was given and answers
//! with the outputs the test scripts, as CloudFormation would once its resources exist. For a
//! parameter-only update of `Paused` (`deployer pause` / `resume`) its change set lists what
//! CloudFormation would: `Remove` (pause) or `Add` (resume) for every resource under the
//! condition `Running`, `Modify` for every resource with an `Fn::If` on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// One scripted resource event: logical id, type, status, reason.
pub type ScriptEvent = (&'static str, &'static str, &'static str, &'static str);

/// What the stack does.
#[derive(Debug, Clone)]
pub struct Script {
    /// Status before the test acts (`None`: the stack does not exist).
    pub initial: Option<&'static str>,
    /// Status after a change set is executed, and the events it produces (oldest first).
    pub after_execute: (&'static str, Vec<ScriptEvent>),
    /// Status after `DeleteStack` (`None`: the stack is gone), and its events.
    pub after_delete: (Option<&'static str>, Vec<ScriptEvent>),
}

#[derive(Debug)]
struct Stack {
    status: Option<String>,
    events: Vec<ScriptEvent>,
    /// Every `Action` received, in order.
    actions: Vec<String>,
    /// Outputs DescribeStacks shows.
    outputs: Vec<(String, String)>,
    /// Every request's form, in order.
    forms: Vec<HashMap<String, String>>,
    /// After an execute: DescribeStacks calls still answering `*_IN_PROGRESS`, and the status
    /// that follows them.
    pending: (usize, Option<String>),
    /// How many DescribeStacks calls an executed operation stays in progress for.
    execute_polls: usize,
}

type Shared = Arc<Mutex<(Script, Stack)>>;

/// A running double.
pub struct CfnDouble {
    url: String,
    shared: Shared,
}

impl CfnDouble {
    /// Starts the double on 127.0.0.1 and a free port, on a runtime thread of its own.
    pub fn start(script: Script) -> CfnDouble {
        let stack = Stack {
            status: script.initial.map(str::to_owned),
            events: Vec::new(),
            actions: Vec::new(),
            outputs: Vec::new(),
            forms: Vec::new(),
            pending: (0, None),
            execute_polls: 0,
        };
        let shared: Shared = Arc::new(Mutex::new((script, stack)));
        let app = Router::new()
            .route("/", post(handle))
            .with_state(shared.clone());
        let url = crate::servers::serve(app);
        CfnDouble { url, shared }
    }

    /// Base URL, for `AWS_ENDPOINT_URL_CLOUDFORMATION`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// DescribeStacks shows these outputs from now on.
    pub fn set_outputs(&self, outputs: &[(&str, &str)]) {
        self.shared.lock().unwrap().1.outputs = outputs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
    }

    /// From now on an executed change set stays `CREATE_IN_PROGRESS` for `polls` DescribeStacks
    /// calls before it reaches its scripted status (as a stack waiting for a custom resource).
    pub fn set_execute_polls(&self, polls: usize) {
        self.shared.lock().unwrap().1.execute_polls = polls;
    }

    /// The forms of the requests with `Action=action`, in order.
    pub fn requests(&self, action: &str) -> Vec<HashMap<String, String>> {
        let guard = self.shared.lock().unwrap();
        guard
            .1
            .forms
            .iter()
            .filter(|form| form.get("Action").map(String::as_str) == Some(action))
            .cloned()
            .collect()
    }

    /// The `Action`s received so far.
    pub fn actions(&self) -> Vec<String> {
        self.shared.lock().unwrap().1.actions.clone()
    }
}

const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/llm-eval-network/00000000-0000-0000-0000-000000000000";

pub fn xml(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ResponseMetadata></{action}Response>"
    );
    ([("content-type", "text/xml")], body).into_response()
}

pub fn empty(action: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ResponseMetadata></{action}Response>"
    );
    ([("content-type", "text/xml")], body).into_response()
}

fn missing() -> Response {
    missing_stack("llm-eval-network")
}

fn missing_stack(name: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id {name} does not exist</Message></Error><RequestId>00000000-0000-0000-0000-000000000002</RequestId></ErrorResponse>"
    );
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "text/xml")],
        body,
    )
        .into_response()
}

fn event_xml(index: usize, event: &ScriptEvent) -> String {
    let (logical_id, kind, status, reason) = event;
    format!(
        "<member><StackId>{STACK_ID}</StackId><EventId>event-{index}</EventId><StackName>llm-eval-network</StackName><LogicalResourceId>{logical_id}</LogicalResourceId><ResourceType>{kind}</ResourceType><Timestamp>2026-01-01T00:00:{:02}Z</Timestamp><ResourceStatus>{status}</ResourceStatus><ResourceStatusReason>{reason}</ResourceStatusReason></member>",
        index % 60
    )
}

async fn handle(State(shared): State<Shared>, body: String) -> Response {
    let form: HashMap<String, String> = url_decode_form(&body);
    let action = form.get("Action").cloned().unwrap_or_default();
    let mut guard = shared.lock().unwrap();
    let (script, stack) = &mut *guard;
    stack.actions.push(action.clone());
    stack.forms.push(form.clone());
    match action.as_str() {
        "DescribeStacks" => {
            if stack.pending.0 > 0 {
                stack.pending.0 -= 1;
                if stack.pending.0 == 0 {
                    stack.status = stack.pending.1.take();
                }
            }
            match &stack.status {
                None => missing(),
                Some(status) => {
                    let outputs: String = stack
                    .outputs
                    .iter()
                    .map(|(key, value)| {
                        format!("<member><OutputKey>{key}</OutputKey><OutputValue>{value}</OutputValue></member>")
                    })
                    .collect();
                    xml(
                        "DescribeStacks",
                        &format!(
                            "<Stacks><member><StackName>llm-eval-network</StackName><StackId>{STACK_ID}</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>{status}</StackStatus><Outputs>{outputs}</Outputs></member></Stacks>"
                        ),
                    )
                }
            }
        }
        "DescribeStackEvents" => {
            if stack.status.is_none() && stack.events.is_empty() {
                return missing();
            }
            let members: String = stack
                .events
                .iter()
                .enumerate()
                .rev()
                .map(|(index, event)| event_xml(index, event))
                .collect();
            xml(
                "DescribeStackEvents",
                &format!("<StackEvents>{members}</StackEvents>"),
            )
        }
        "GetTemplate" => xml("GetTemplate", "<TemplateBody>{}</TemplateBody>"),
        "CreateChangeSet" => {
            if stack.status.is_none() {
                stack.status = Some("REVIEW_IN_PROGRESS".into());
            }
            xml(
                "CreateChangeSet",
                &format!(
                    "<Id>arn:aws:cloudformation:us-east-1:123456789012:changeSet/deployer/1</Id><StackId>{STACK_ID}</StackId>"
                ),
            )
        }
        "DescribeChangeSet" => xml(
            "DescribeChangeSet",
            &format!(
                "<ChangeSetName>deployer</ChangeSetName><ChangeSetId>arn:aws:cloudformation:us-east-1:123456789012:changeSet/deployer/1</ChangeSetId><StackId>{STACK_ID}</StackId><StackName>llm-eval-network</StackName><Status>CREATE_COMPLETE</Status><ExecutionStatus>AVAILABLE</ExecutionStatus><Changes><member><Type>Resource</Type><ResourceChange><Action>Add</Action><LogicalResourceId>Vpc</LogicalResourceId><ResourceType>AWS::EC2::VPC</ResourceType></ResourceChange></member></Changes>"
            ),
        ),
        "ExecuteChangeSet" => {
            let (status, events) = script.after_execute.clone();
            stack.events.extend(events);
            if stack.execute_polls > 0 {
                stack.pending = (stack.execute_polls, Some(status.to_owned()));
                stack.status = Some("CREATE_IN_PROGRESS".to_owned());
            } else {
                stack.status = Some(status.to_owned());
            }
            xml("ExecuteChangeSet", "")
        }
        "DeleteChangeSet" => xml("DeleteChangeSet", ""),
        "DeleteStack" => {
            let (status, events) = script.after_delete.clone();
            stack.events.extend(events);
            stack.status = status.map(str::to_owned);
            // A recreated stack starts with no history of its own in this double.
            if stack.status.is_none() {
                script.after_delete = (None, Vec::new());
            }
            empty("DeleteStack")
        }
        other => (
            StatusCode::BAD_REQUEST,
            format!("the scripted double does not handle {other}"),
        )
            .into_response(),
    }
}

/// `application/x-www-form-urlencoded` into a map (the AWS Query protocol's request body).
pub fn url_decode_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (decode(key), decode(value)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'+' => out.push(b' '),
            b'%' if idx + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[idx + 1..idx + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                idx += 2;
            }
            byte => out.push(byte),
        }
        idx += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One stack of [`Stacks`].
#[derive(Debug, Default, Clone)]
struct Deployed {
    status: String,
    template: String,
    parameters: Vec<(String, String)>,
    /// The change set waiting to be executed: template and parameters.
    pending: Option<(String, Vec<(String, String)>)>,
    events: Vec<String>,
    /// An operation started elsewhere: the status it ends in, after this many more
    /// `DescribeStacks`.
    settles: Option<(String, usize)>,
    /// `(Action, LogicalResourceId)` of every change set described, in order.
    described: Vec<Vec<(String, String)>>,
}

/// Whether `parameters` hold `Paused=true`.
fn paused(parameters: &[(String, String)]) -> bool {
    parameters
        .iter()
        .any(|(key, value)| key == "Paused" && value == "true")
}

/// `(Action, LogicalResourceId, ResourceType)` of the pending change set of `stack`: one `Add`
/// for a new stack; for a `Paused` flip of the same template, what CloudFormation derives from
/// the condition `Running`; otherwise one `Modify` standing for the rest.
fn resource_changes(stack: &Deployed) -> Vec<(String, String, String)> {
    let everything = |action: &str| {
        vec![(
            action.to_owned(),
            "Everything".to_owned(),
            "AWS::CloudFormation::WaitConditionHandle".to_owned(),
        )]
    };
    let Some((template, parameters)) = &stack.pending else {
        return Vec::new();
    };
    if stack.status == "REVIEW_IN_PROGRESS" {
        return everything("Add");
    }
    let pausing = paused(parameters);
    let parsed = serde_json::from_str::<serde_json::Value>(template).unwrap_or_default();
    if *template != stack.template
        || pausing == paused(&stack.parameters)
        || parsed["Resources"].as_object().is_none()
    {
        return everything("Modify");
    }
    let mut changes = Vec::new();
    for (id, resource) in parsed["Resources"].as_object().into_iter().flatten() {
        let kind = resource["Type"].as_str().unwrap_or_default().to_owned();
        if resource["Condition"] == "Running" {
            let action = if pausing { "Remove" } else { "Add" };
            changes.push((action.to_owned(), id.clone(), kind));
        } else if resource.to_string().contains(r#"{"Fn::If":["Running","#) {
            changes.push(("Modify".to_owned(), id.clone(), kind));
        }
    }
    changes
}

#[derive(Debug, Default)]
struct StacksState {
    stacks: HashMap<String, Deployed>,
    outputs: HashMap<String, Vec<(String, String)>>,
    /// `(Action, StackName)` of every request, in order.
    calls: Vec<(String, String)>,
    /// Where a `TemplateURL` is read from (moto's S3, path style), as CloudFormation reads it
    /// from S3 itself.
    s3_endpoint: Option<String>,
}

/// A CloudFormation double where every change set succeeds; see the module docs.
pub struct Stacks {
    url: String,
    shared: Arc<Mutex<StacksState>>,
}

impl Stacks {
    /// Starts the double; `outputs` are each stack's outputs once it is deployed.
    pub fn start(outputs: &[(&str, &[(&str, &str)])]) -> Stacks {
        let state = StacksState {
            outputs: outputs
                .iter()
                .map(|(stack, pairs)| {
                    let pairs = pairs
                        .iter()
                        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                        .collect();
                    ((*stack).to_owned(), pairs)
                })
                .collect(),
            ..StacksState::default()
        };
        let shared = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/", post(handle_stacks))
            .with_state(shared.clone());
        let url = crate::servers::serve(app);
        Stacks { url, shared }
    }

    /// Reads templates given by `TemplateURL` (`https://BUCKET.s3.REGION.amazonaws.com/KEY`)
    /// from the S3 at `endpoint` (moto), as CloudFormation reads them from S3.
    pub fn with_s3(self, endpoint: &str) -> Stacks {
        self.shared.lock().unwrap().s3_endpoint = Some(endpoint.trim_end_matches('/').to_owned());
        self
    }

    /// Base URL, for `AWS_ENDPOINT_URL_CLOUDFORMATION`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The parameters `stack` was last deployed with.
    pub fn parameters(&self, stack: &str) -> Vec<(String, String)> {
        self.shared
            .lock()
            .unwrap()
            .stacks
            .get(stack)
            .map(|deployed| deployed.parameters.clone())
            .unwrap_or_default()
    }

    /// `(Action, LogicalResourceId)` of every change set of `stack` described so far, in order.
    pub fn described_changes(&self, stack: &str) -> Vec<Vec<(String, String)>> {
        self.shared
            .lock()
            .unwrap()
            .stacks
            .get(stack)
            .map(|deployed| deployed.described.clone())
            .unwrap_or_default()
    }

    /// `(Action, StackName)` of every request so far.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().calls.clone()
    }

    /// Puts `stack` in `status` (an operation an interrupted `up` left running), ending in
    /// `settles_to` after `polls` more `DescribeStacks`.
    pub fn in_progress(&self, stack: &str, status: &str, settles_to: &str, polls: usize) {
        self.shared.lock().unwrap().stacks.insert(
            stack.to_owned(),
            Deployed {
                status: status.to_owned(),
                settles: Some((settles_to.to_owned(), polls)),
                ..Deployed::default()
            },
        );
    }
}

fn stack_id(name: &str) -> String {
    format!(
        "arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/00000000-0000-0000-0000-000000000000"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `Parameters.member.N.ParameterKey` / `ParameterValue` pairs of a request, in order.
fn form_parameters(form: &HashMap<String, String>) -> Vec<(String, String)> {
    (1..)
        .map_while(|index| {
            let key = form.get(&format!("Parameters.member.{index}.ParameterKey"))?;
            let value = form
                .get(&format!("Parameters.member.{index}.ParameterValue"))
                .cloned()
                .unwrap_or_default();
            Some((key.clone(), value))
        })
        .collect()
}

async fn handle_stacks(State(shared): State<Arc<Mutex<StacksState>>>, body: String) -> Response {
    let mut form = url_decode_form(&body);
    // A template too large to send inline comes as a URL into S3: read it from there first.
    if let Some(url) = form.get("TemplateURL").cloned() {
        let endpoint = shared.lock().unwrap().s3_endpoint.clone();
        match template_from_s3(endpoint.as_deref(), &url).await {
            Ok(template) => {
                form.insert("TemplateBody".to_owned(), template);
            }
            Err(message) => {
                return (StatusCode::BAD_REQUEST, format!("<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>{}</Message></Error></ErrorResponse>", escape(&message))).into_response();
            }
        }
    }
    let action = form.get("Action").cloned().unwrap_or_default();
    let name = form.get("StackName").cloned().unwrap_or_default();
    let mut guard = shared.lock().unwrap();
    let state = &mut *guard;
    state.calls.push((action.clone(), name.clone()));
    let outputs = state.outputs.get(&name).cloned().unwrap_or_default();
    let stack = state.stacks.get_mut(&name);
    match (action.as_str(), stack) {
        ("CreateChangeSet", stack) => {
            // A parameter-only update (`pause`, `resume`) keeps the deployed template and the
            // values marked `UsePreviousValue`, as CloudFormation does.
            let use_previous = |key: &str| form.get(key).is_some_and(|value| value == "true");
            let template = match &stack {
                Some(stack) if use_previous("UsePreviousTemplate") => stack.template.clone(),
                _ => form.get("TemplateBody").cloned().unwrap_or_default(),
            };
            let parameters = form_parameters(&form)
                .into_iter()
                .enumerate()
                .map(|(index, (key, value))| {
                    let previous = stack.as_ref().filter(|_| {
                        use_previous(&format!("Parameters.member.{}.UsePreviousValue", index + 1))
                    });
                    match previous {
                        Some(stack) => {
                            let old = stack
                                .parameters
                                .iter()
                                .find(|(name, _)| *name == key)
                                .map(|(_, old)| old.clone())
                                .unwrap_or_default();
                            (key, old)
                        }
                        None => (key, value),
                    }
                })
                .collect();
            let pending = (template, parameters);
            match stack {
                Some(stack) => stack.pending = Some(pending),
                None => {
                    state.stacks.insert(
                        name.clone(),
                        Deployed {
                            status: "REVIEW_IN_PROGRESS".into(),
                            pending: Some(pending),
                            ..Deployed::default()
                        },
                    );
                }
            }
            xml(
                "CreateChangeSet",
                &format!(
                    "<Id>arn:aws:cloudformation:us-east-1:123456789012:changeSet/{name}/1</Id><StackId>{}</StackId>",
                    stack_id(&name)
                ),
            )
        }
        (_, None) => missing_stack(&name),
        ("DescribeStacks", Some(stack)) => {
            if let Some((settles_to, polls)) = stack.settles.take() {
                if polls == 0 {
                    stack.status = settles_to;
                } else {
                    stack.settles = Some((settles_to, polls - 1));
                }
            }
            let members = |pairs: &[(String, String)], kind: &str| -> String {
                pairs
                    .iter()
                    .map(|(key, value)| {
                        format!(
                            "<member><{kind}Key>{}</{kind}Key><{kind}Value>{}</{kind}Value></member>",
                            escape(key),
                            escape(value)
                        )
                    })
                    .collect()
            };
            let outputs = if stack.status.ends_with("_COMPLETE") {
                members(&outputs, "Output")
            } else {
                String::new()
            };
            xml(
                "DescribeStacks",
                &format!(
                    "<Stacks><member><StackName>{name}</StackName><StackId>{}</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>{}</StackStatus><Parameters>{}</Parameters><Outputs>{outputs}</Outputs></member></Stacks>",
                    stack_id(&name),
                    stack.status,
                    members(&stack.parameters, "Parameter"),
                ),
            )
        }
        ("DescribeStackEvents", Some(stack)) => {
            let members: String = stack.events.iter().rev().cloned().collect();
            xml(
                "DescribeStackEvents",
                &format!("<StackEvents>{members}</StackEvents>"),
            )
        }
        ("GetTemplate", Some(stack)) => xml(
            "GetTemplate",
            &format!("<TemplateBody>{}</TemplateBody>", escape(&stack.template)),
        ),
        ("DescribeChangeSet", Some(stack)) => {
            let changes = resource_changes(stack);
            stack.described.push(
                changes
                    .iter()
                    .map(|(action, id, _)| (action.clone(), id.clone()))
                    .collect(),
            );
            let members: String = changes
                .iter()
                .map(|(action, id, kind)| {
                    format!(
                        "<member><Type>Resource</Type><ResourceChange><Action>{action}</Action><LogicalResourceId>{id}</LogicalResourceId><ResourceType>{kind}</ResourceType></ResourceChange></member>"
                    )
                })
                .collect();
            xml(
                "DescribeChangeSet",
                &format!(
                    "<ChangeSetName>deployer</ChangeSetName><ChangeSetId>arn:aws:cloudformation:us-east-1:123456789012:changeSet/{name}/1</ChangeSetId><StackId>{}</StackId><StackName>{name}</StackName><Status>CREATE_COMPLETE</Status><ExecutionStatus>AVAILABLE</ExecutionStatus><Changes>{members}</Changes>",
                    stack_id(&name)
                ),
            )
        }
        ("ExecuteChangeSet", Some(stack)) => {
            let Some((template, parameters)) = stack.pending.take() else {
                return (StatusCode::BAD_REQUEST, "no change set to execute").into_response();
            };
            stack.status = if stack.status == "REVIEW_IN_PROGRESS" {
                "CREATE_COMPLETE".into()
            } else {
                "UPDATE_COMPLETE".into()
            };
            // CloudFormation lists every parameter, defaulted ones too.
            let mut parameters = parameters;
            if let Ok(parsed) = serde_json::from_str::<serde_json::Value>(&template)
                && let Some(declared) = parsed["Parameters"].as_object()
            {
                for (key, declaration) in declared {
                    if let Some(default) = declaration["Default"].as_str()
                        && !parameters.iter().any(|(name, _)| name == key)
                    {
                        parameters.push((key.clone(), default.to_owned()));
                    }
                }
            }
            stack.template = template;
            stack.parameters = parameters;
            let index = stack.events.len();
            stack.events.push(format!(
                "<member><StackId>{}</StackId><EventId>{name}-{index}</EventId><StackName>{name}</StackName><LogicalResourceId>{name}</LogicalResourceId><ResourceType>AWS::CloudFormation::Stack</ResourceType><Timestamp>2026-01-01T00:00:{:02}Z</Timestamp><ResourceStatus>{}</ResourceStatus></member>",
                stack_id(&name),
                index % 60,
                stack.status
            ));
            xml("ExecuteChangeSet", "")
        }
        ("DeleteChangeSet", Some(stack)) => {
            stack.pending = None;
            xml("DeleteChangeSet", "")
        }
        ("DeleteStack", Some(_)) => {
            state.stacks.remove(&name);
            empty("DeleteStack")
        }
        (other, Some(_)) => (
            StatusCode::BAD_REQUEST,
            format!("the scripted double does not handle {other}"),
        )
            .into_response(),
    }
}

/// The object a `TemplateURL` names, read through the S3 API at `endpoint` (moto), signed as
/// CloudFormation's own read is.
async fn template_from_s3(endpoint: Option<&str>, url: &str) -> Result<String, String> {
    let endpoint = endpoint.ok_or("TemplateURL given, but the double has no S3 endpoint")?;
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("TemplateURL {url} is not https"))?;
    let (host, key) = rest
        .split_once('/')
        .ok_or_else(|| format!("TemplateURL {url} has no key"))?;
    let bucket = host
        .split_once(".s3.")
        .map(|(bucket, _)| bucket)
        .ok_or_else(|| format!("TemplateURL {url} is not an S3 URL"))?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "cfn-double",
        ))
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|error| format!("reading {url}: {}", aws_sdk_s3::Error::from(error)))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|error| format!("reading {url}: {error}"))?
        .into_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{url} is not UTF-8"))
}
