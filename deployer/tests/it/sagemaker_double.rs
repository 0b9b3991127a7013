//! A scripted SageMaker double: a small local HTTP server speaking SageMaker's real awsJson1_1
//! protocol (`X-Amz-Target: SageMaker.<Operation>`, JSON bodies, `__type` errors) for the Studio
//! calls moto 5.2 does not implement (apps, spaces, user profiles). One domain; an app being
//! deleted is `Deleting` for one listing, then `Deleted`, as SageMaker reports it. The deployer's
//! real SDK client talks to it through `AWS_ENDPOINT_URL_SAGEMAKER`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The domain's contents.
#[derive(Debug, Clone, Default)]
pub struct Domain {
    /// Domain id (`d-...`) and name.
    pub id: String,
    pub name: String,
    /// Its home EFS file system and VPC (created in moto by the test).
    pub efs_id: String,
    pub vpc_id: String,
    /// (app name, space name, status).
    pub apps: Vec<(String, String, String)>,
    pub spaces: Vec<String>,
    pub profiles: Vec<String>,
}

type Shared = Arc<Mutex<(Domain, Vec<String>)>>;

/// A running double.
pub struct SageMakerDouble {
    url: String,
    shared: Shared,
}

impl SageMakerDouble {
    /// Starts the double on 127.0.0.1 and a free port, on a runtime thread of its own.
    pub fn start(domain: Domain) -> SageMakerDouble {
        let shared: Shared = Arc::new(Mutex::new((domain, Vec::new())));
        let state = shared.clone();
        let app = Router::new().route(
            "/",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move { handle(&state, &headers, &body) }
            }),
        );
        let url = crate::servers::serve(app);
        SageMakerDouble { url, shared }
    }

    /// Base URL, for `AWS_ENDPOINT_URL_SAGEMAKER`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `Operation name` of every mutating call, in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().unwrap().1.clone()
    }

    /// The domain as it is now.
    pub fn domain(&self) -> Domain {
        self.shared.lock().unwrap().0.clone()
    }
}

fn reply(value: Value) -> Response {
    (
        [("content-type", "application/x-amz-json-1.1")],
        value.to_string(),
    )
        .into_response()
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": "ResourceNotFound", "Message": message}).to_string(),
    )
        .into_response()
}

fn handle(shared: &Shared, headers: &HeaderMap, body: &str) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let operation = target.strip_prefix("SageMaker.").unwrap_or(target);
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut guard = shared.lock().unwrap();
    let (domain, calls) = &mut *guard;
    let text = |key: &str| request[key].as_str().unwrap_or_default().to_owned();
    match operation {
        "ListDomains" => reply(json!({"Domains": [{
            "DomainId": domain.id, "DomainName": domain.name, "Status": "InService",
            "DomainArn": format!("arn:aws:sagemaker:us-east-1:123456789012:domain/{}", domain.id),
        }]})),
        "DescribeDomain" if text("DomainId") == domain.id => reply(json!({
            "DomainId": domain.id, "DomainName": domain.name, "Status": "InService",
            "HomeEfsFileSystemId": domain.efs_id, "VpcId": domain.vpc_id,
        })),
        "DescribeDomain" => not_found("domain not found"),
        "ListApps" => {
            let apps: Vec<Value> = domain
                .apps
                .iter()
                .map(|(name, space, status)| json!({
                    "DomainId": domain.id, "AppType": "JupyterLab", "AppName": name,
                    "SpaceName": space, "Status": status,
                }))
                .collect();
            // A deleting app is reported once more as Deleting, then as Deleted.
            for app in &mut domain.apps {
                if app.2 == "Deleting" {
                    app.2 = "Deleted".into();
                }
            }
            reply(json!({"Apps": apps}))
        }
        "DeleteApp" => {
            calls.push(format!("DeleteApp {}", text("AppName")));
            match domain.apps.iter_mut().find(|app| app.0 == text("AppName")) {
                Some(app) => {
                    app.2 = "Deleting".into();
                    reply(json!({}))
                }
                None => not_found("app not found"),
            }
        }
        "ListSpaces" => reply(json!({"Spaces": domain.spaces.iter().map(|space| json!({
            "DomainId": domain.id, "SpaceName": space, "Status": "InService",
        })).collect::<Vec<_>>()})),
        "DeleteSpace" => {
            let name = text("SpaceName");
            calls.push(format!("DeleteSpace {name}"));
            if domain.apps.iter().any(|app| app.1 == name && app.2 != "Deleted") {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"__type": "ResourceInUse", "Message": "space has apps"}).to_string(),
                )
                    .into_response();
            }
            domain.spaces.retain(|space| *space != name);
            reply(json!({}))
        }
        "ListUserProfiles" => reply(json!({"UserProfiles": domain.profiles.iter().map(|profile| json!({
            "DomainId": domain.id, "UserProfileName": profile, "Status": "InService",
        })).collect::<Vec<_>>()})),
        "DeleteUserProfile" => {
            let name = text("UserProfileName");
            calls.push(format!("DeleteUserProfile {name}"));
            domain.profiles.retain(|profile| *profile != name);
            reply(json!({}))
        }
        other => (
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException", "Message": format!("the scripted double does not handle {other}")}).to_string(),
        )
            .into_response(),
    }
}
