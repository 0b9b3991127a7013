//! Local HTTP servers the bootstrap tests talk to, each on 127.0.0.1 and a free port, running on
//! a thread of their own so that the blocking tests (which run the real binaries) can use them.
//!
//! - [`ResponseUrl`] stands in for CloudFormation's presigned S3 response URL: it records every
//!   request exactly as received (method, URI, headers, body) and answers as scripted, or never.
//! - [`CodeBuildDouble`] speaks the CodeBuild JSON 1.1 protocol (`X-Amz-Target:
//!   CodeBuild_20161006.<Operation>`) for StartBuild, BatchGetBuilds and ListBuildsForProject.
//!   moto's CodeBuild ignores StartBuild's overrides and reports every build as SUCCEEDED with
//!   every phase succeeded, so it cannot show what the Lambda asked for, a build going through
//!   its phases, or a build that failed in a phase: this scripted double of that one API can,
//!   and records each call.
//! - [`StsDouble`] stands in front of moto's STS and refuses AssumeRole into chosen accounts
//!   (moto assumes any role, so it cannot express an account whose role is missing).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (lowercase), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Starts `router` on a free port in a background thread; returns the base URL.
pub fn serve(router: Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// How the response URL answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// This HTTP status, empty body.
    Status(u16),
    /// Never (the connection stays open).
    Hang,
}

#[derive(Default)]
struct ResponseState {
    received: Mutex<Vec<Received>>,
    /// Answers in order; when empty, 200.
    script: Mutex<VecDeque<Answer>>,
}

/// The stand-in for CloudFormation's presigned response URL.
pub struct ResponseUrl {
    base: String,
    state: Arc<ResponseState>,
}

async fn record_response(
    State(state): State<Arc<ResponseState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.received.lock().unwrap().push(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(key, value)| {
                (
                    key.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    let answer = state.script.lock().unwrap().pop_front();
    match answer {
        None => StatusCode::OK.into_response(),
        Some(Answer::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Answer::Hang) => std::future::pending().await,
    }
}

impl ResponseUrl {
    /// Answers `script` in order, then 200.
    pub fn start(script: &[Answer]) -> ResponseUrl {
        let state = Arc::new(ResponseState::default());
        state.script.lock().unwrap().extend(script.iter().copied());
        let router = Router::new()
            .fallback(record_response)
            .with_state(state.clone());
        ResponseUrl {
            base: serve(router),
            state,
        }
    }

    /// A URL shaped like CloudFormation's: a path and a signature in the query.
    pub fn url(&self) -> String {
        format!(
            "{}/cloudformation-custom-resource-response-useast1/arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/boot/guid%7CDeployment%7Creq-1?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=SIGNATURE-SECRET",
            self.base
        )
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

#[derive(Default)]
struct CodeBuildState {
    calls: Mutex<Vec<(String, Json)>>,
    /// The build BatchGetBuilds returns.
    build: Mutex<Option<Json>>,
    /// Later states of the build: each BatchGetBuilds moves on to the next (the last stays).
    progression: Mutex<VecDeque<Json>>,
    /// What ListBuildsForProject answers, in turn (the last stays); empty: no such project.
    listings: Mutex<VecDeque<Vec<String>>>,
    /// Per build id, its states in turn (the last stays); ids not here get `progression`.
    by_id: Mutex<std::collections::HashMap<String, VecDeque<Json>>>,
}

/// Scripted CodeBuild (see the module doc for why not moto).
pub struct CodeBuildDouble {
    base: String,
    state: Arc<CodeBuildState>,
}

async fn codebuild_call(
    State(state): State<Arc<CodeBuildState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    let operation = target.rsplit('.').next().unwrap_or("").to_owned();
    state
        .calls
        .lock()
        .unwrap()
        .push((operation.clone(), request.clone()));
    let answer = match operation.as_str() {
        "StartBuild" => {
            let project = request["projectName"].as_str().unwrap_or("?");
            let n = state.calls.lock().unwrap().len();
            json!({"build": {"id": format!("{project}:build-{n}"), "buildStatus": "IN_PROGRESS"}})
        }
        "BatchGetBuilds" => {
            let id = request["ids"][0].as_str().unwrap_or_default().to_owned();
            if let Some(states) = state.by_id.lock().unwrap().get_mut(&id) {
                let build = if states.len() > 1 {
                    states.pop_front()
                } else {
                    states.front().cloned()
                };
                let answer =
                    json!({"builds": build.into_iter().collect::<Vec<_>>(), "buildsNotFound": []});
                return (
                    [("content-type", "application/x-amz-json-1.1")],
                    answer.to_string(),
                )
                    .into_response();
            }
            {
                let mut progression = state.progression.lock().unwrap();
                if let Some(next) = progression.pop_front() {
                    if progression.is_empty() {
                        progression.push_back(next.clone());
                    }
                    *state.build.lock().unwrap() = Some(next);
                }
            }
            let build = state.build.lock().unwrap().clone();
            json!({"builds": build.into_iter().collect::<Vec<_>>(), "buildsNotFound": []})
        }
        "ListBuildsForProject" => {
            let mut listings = state.listings.lock().unwrap();
            let Some(ids) = listings.pop_front() else {
                return (
                    StatusCode::BAD_REQUEST,
                    [("content-type", "application/x-amz-json-1.1")],
                    json!({"__type": "ResourceNotFoundException", "message": "The provided project name was not found"}).to_string(),
                )
                    .into_response();
            };
            if listings.is_empty() {
                listings.push_back(ids.clone());
            }
            json!({"ids": ids})
        }
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/x-amz-json-1.1")],
                json!({"__type": "UnknownOperationException", "message": target}).to_string(),
            )
                .into_response();
        }
    };
    (
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}

impl CodeBuildDouble {
    /// BatchGetBuilds answers with `build` (or no build).
    pub fn start(build: Option<Json>) -> CodeBuildDouble {
        let state = Arc::new(CodeBuildState::default());
        *state.build.lock().unwrap() = build;
        let router = Router::new()
            .fallback(codebuild_call)
            .with_state(state.clone());
        CodeBuildDouble {
            base: serve(router),
            state,
        }
    }

    /// A project whose build goes through `states` (one per BatchGetBuilds, the last stays),
    /// and whose ListBuildsForProject answers `listings` in turn (the last stays). This is what
    /// moto cannot express: moto's builds are SUCCEEDED at once, with every phase succeeded.
    pub fn progressing(states: Vec<Json>, listings: Vec<Vec<String>>) -> CodeBuildDouble {
        let double = CodeBuildDouble::start(None);
        double.state.progression.lock().unwrap().extend(states);
        double.state.listings.lock().unwrap().extend(listings);
        double
    }

    /// Several builds, each going through its own `states` (one per BatchGetBuilds of its id,
    /// the last stays), listed as `listings` says in turn.
    pub fn with_builds(
        builds: Vec<(&str, Vec<Json>)>,
        listings: Vec<Vec<String>>,
    ) -> CodeBuildDouble {
        let double = CodeBuildDouble::start(None);
        double.state.by_id.lock().unwrap().extend(
            builds
                .into_iter()
                .map(|(id, states)| (id.to_owned(), states.into_iter().collect())),
        );
        double.state.listings.lock().unwrap().extend(listings);
        double
    }

    /// Base URL, for `AWS_ENDPOINT_URL_CODEBUILD`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Operations called, with their request bodies.
    pub fn calls(&self) -> Vec<(String, Json)> {
        self.state.calls.lock().unwrap().clone()
    }
}

#[derive(Default)]
struct StsState {
    /// Where everything but a refused AssumeRole goes.
    moto: String,
    /// Accounts whose roles may not be assumed.
    refused: Mutex<Vec<String>>,
}

/// STS in front of moto: AssumeRole into a refused account gets the AccessDenied error AWS gives
/// when the role does not exist or does not trust the caller; every other request goes to moto
/// unchanged. moto assumes any role (it "does not need to exist"), so it cannot express an
/// account whose role is missing.
pub struct StsDouble {
    base: String,
    state: Arc<StsState>,
}

async fn sts_call(
    State(state): State<Arc<StsState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = crate::cfn_double::url_decode_form(&String::from_utf8_lossy(&body));
    if form.get("Action").map(String::as_str) == Some("AssumeRole") {
        let role = form.get("RoleArn").cloned().unwrap_or_default();
        let refused = state.refused.lock().unwrap().clone();
        if refused
            .iter()
            .any(|account| role.starts_with(&format!("arn:aws:iam::{account}:")))
        {
            let message = format!(
                "User: arn:aws:iam::123456789012:user/facilitator is not authorized to perform: sts:AssumeRole on resource: {role}"
            );
            return (
                StatusCode::FORBIDDEN,
                [("content-type", "text/xml")],
                format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000003</RequestId></ErrorResponse>"
                ),
            )
                .into_response();
        }
    }
    let client = reqwest::Client::new();
    let mut request = client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{}{}", state.moto, uri),
    );
    for (key, value) in &headers {
        if key.as_str() != "host" && key.as_str() != "content-length" {
            request = request.header(key.as_str(), value.as_bytes());
        }
    }
    let answer = request.body(body.to_vec()).send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let content_type = answer
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("text/xml")
        .to_owned();
    let bytes = answer.bytes().await.unwrap();
    (status, [("content-type", content_type)], bytes.to_vec()).into_response()
}

impl StsDouble {
    /// STS for `moto_url`, refusing AssumeRole into `refused` accounts.
    pub fn start(moto_url: &str, refused: &[&str]) -> StsDouble {
        let state = Arc::new(StsState {
            moto: moto_url.to_owned(),
            refused: Mutex::new(
                refused
                    .iter()
                    .map(|account| (*account).to_owned())
                    .collect(),
            ),
        });
        let router = Router::new().fallback(sts_call).with_state(state.clone());
        StsDouble {
            base: serve(router),
            state,
        }
    }

    /// Base URL, for `AWS_ENDPOINT_URL_STS`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// From now on every role may be assumed (the facilitator fixed the refused accounts).
    pub fn allow_all(&self) {
        self.state.refused.lock().unwrap().clear();
    }
}
