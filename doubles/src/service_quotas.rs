//! A double of Service Quotas' `ListServiceQuotas` (AWS JSON 1.1: `POST /` with
//! `X-Amz-Target: ServiceQuotasV20190624.ListServiceQuotas`, body `{"ServiceCode", "NextToken",
//! "MaxResults", "QuotaCode"}`, answer `{"Quotas": [...], "NextToken"}` with the API
//! reference's field names), which `deployer doctor` reads and moto does not implement.
//!
//! Pages hold at most `MaxResults` quotas (default 2, so clients' pagination is exercised).
//! Another target gets the `UnknownOperationException` error of the JSON protocol. Signatures are
//! not checked. One server per test on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The `X-Amz-Target` of `ListServiceQuotas`.
pub const LIST_SERVICE_QUOTAS: &str = "ServiceQuotasV20190624.ListServiceQuotas";

/// One applied quota.
#[derive(Debug, Clone)]
pub struct Quota {
    /// Service code, e.g. `bedrock`, `ec2`, `vpc`.
    pub service_code: String,
    /// Quota code, e.g. `L-0263D0A3`.
    pub quota_code: String,
    /// Quota name as AWS spells it.
    pub quota_name: String,
    /// Applied value.
    pub value: f64,
}

impl Quota {
    /// A quota.
    pub fn new(service_code: &str, quota_code: &str, quota_name: &str, value: f64) -> Quota {
        Quota {
            service_code: service_code.to_owned(),
            quota_code: quota_code.to_owned(),
            quota_name: quota_name.to_owned(),
            value,
        }
    }
}

/// A running Service Quotas double; stops when dropped.
#[derive(Debug)]
pub struct ServiceQuotas {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ServiceQuotas {
    /// Starts a double holding `quotas` (of any services) in `region`.
    pub async fn start(region: &str, quotas: Vec<Quota>) -> std::io::Result<ServiceQuotas> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new((region.to_owned(), quotas));
        let app = Router::new().route("/", post(handle)).with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ServiceQuotas { addr, task })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_SERVICE_QUOTAS`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServiceQuotas {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    reply(status, json!({"__type": kind, "message": message}))
}

async fn handle(
    State(shared): State<Arc<(String, Vec<Quota>)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (region, quotas) = shared.as_ref();
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if target != LIST_SERVICE_QUOTAS {
        return error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("operation {target} is not served by this double"),
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "body is not JSON",
        );
    };
    let Some(service_code) = request.get("ServiceCode").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "ServiceCode is required",
        );
    };
    let quota_code = request.get("QuotaCode").and_then(Value::as_str);
    let page_size = request
        .get("MaxResults")
        .and_then(Value::as_u64)
        .map_or(2, |size| size.clamp(1, 100) as usize);
    let start = match request.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => match token.parse::<usize>() {
            Ok(start) => start,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPaginationTokenException",
                    "invalid NextToken",
                );
            }
        },
    };
    let matching: Vec<&Quota> = quotas
        .iter()
        .filter(|quota| quota.service_code == service_code)
        .filter(|quota| quota_code.is_none_or(|code| quota.quota_code == code))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(page_size)
        .map(|quota| {
            json!({
                "ServiceCode": quota.service_code,
                "ServiceName": quota.service_code,
                "QuotaArn": format!("arn:aws:servicequotas:{region}:111122223333:{}/{}", quota.service_code, quota.quota_code),
                "QuotaCode": quota.quota_code,
                "QuotaName": quota.quota_name,
                "Value": quota.value,
                "Unit": "None",
                "Adjustable": true,
                "GlobalQuota": false,
            })
        })
        .collect();
    let mut body = json!({"Quotas": page});
    if start + page_size < matching.len() {
        body["NextToken"] = json!((start + page_size).to_string());
    }
    reply(StatusCode::OK, body)
}
