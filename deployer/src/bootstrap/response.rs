//! CloudFormation's custom-resource response protocol, as the build speaks it.
//!
//! The bootstrap Lambda passes the request to the build as `CFN_*` variables ([`Request`]); the
//! build answers with one HTTP `PUT` of a JSON body to the request's presigned response URL:
//! an empty `Content-Type`, and the fields CloudFormation documents (`Status`, `Reason`,
//! `PhysicalResourceId`, `StackId`, `RequestId`, `LogicalResourceId`, `NoEcho`, `Data`). The
//! body may not exceed 4096 bytes, so [`body`] shortens the reason to fit rather than letting
//! CloudFormation reject the answer and wait for its timeout.
//!
//! The response URL is a credential (anyone holding it can answer for the stack), so it never
//! appears in a message: errors name only its host.

use std::time::Duration;

use serde_json::{Map, Value as Json, json};

/// CloudFormation's limit on a response body.
pub const MAX_BODY_BYTES: usize = 4096;

/// What ends a shortened reason.
const ELLIPSIS: &str = "...";

/// Variables of the request, as the bootstrap Lambda sets them.
pub const RESPONSE_URL_VAR: &str = "CFN_RESPONSE_URL";
const STACK_ID_VAR: &str = "CFN_STACK_ID";
const REQUEST_ID_VAR: &str = "CFN_REQUEST_ID";
const LOGICAL_ID_VAR: &str = "CFN_LOGICAL_RESOURCE_ID";
const PHYSICAL_ID_VAR: &str = "CFN_PHYSICAL_RESOURCE_ID";

/// Errors of reading a request or delivering a response.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// `CFN_RESPONSE_URL` is set but another field of the request is not.
    #[error(
        "{RESPONSE_URL_VAR} is set but {0} is not; the bootstrap Lambda sets all CFN_* variables"
    )]
    MissingVariable(&'static str),
    /// The response URL is not an http(s) URL.
    #[error("{RESPONSE_URL_VAR} is not an http or https URL")]
    BadUrl,
    /// The URL answered with an error that a retry cannot fix (expired, forbidden).
    #[error("the response URL at {host} refused the response: HTTP {status}: {body}")]
    Refused {
        /// Host of the URL (the URL itself is a credential).
        host: String,
        /// HTTP status.
        status: u16,
        /// Start of the answer's body.
        body: String,
    },
    /// Every attempt failed or timed out.
    #[error("could not deliver the response to {host} after {attempts} attempt(s): {last}")]
    Undelivered {
        /// Host of the URL.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
    },
}

/// A custom-resource request, as passed to the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Presigned URL the response goes to.
    pub response_url: String,
    /// ARN of the stack the resource belongs to.
    pub stack_id: String,
    /// Id of this request.
    pub request_id: String,
    /// Logical id of the resource in the template.
    pub logical_resource_id: String,
    /// Physical id to answer with (the Lambda chose it: the same for every answer to a resource).
    pub physical_resource_id: String,
}

impl Request {
    /// The request the environment describes, or `None` when `CFN_RESPONSE_URL` is unset (a
    /// build nobody waits for).
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Request>, ResponseError> {
        let Some(response_url) = env(RESPONSE_URL_VAR).filter(|url| !url.is_empty()) else {
            return Ok(None);
        };
        if !(response_url.starts_with("https://") || response_url.starts_with("http://")) {
            return Err(ResponseError::BadUrl);
        }
        let field = |name: &'static str| {
            env(name)
                .filter(|value| !value.is_empty())
                .ok_or(ResponseError::MissingVariable(name))
        };
        Ok(Some(Request {
            response_url,
            stack_id: field(STACK_ID_VAR)?,
            request_id: field(REQUEST_ID_VAR)?,
            logical_resource_id: field(LOGICAL_ID_VAR)?,
            physical_resource_id: field(PHYSICAL_ID_VAR)?,
        }))
    }

    /// Host of the response URL, the only part of it that may be shown.
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.response_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "(unparsable URL)".to_owned())
    }
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The operation succeeded.
    Success,
    /// It failed; the reason says why.
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Failed => "FAILED",
        }
    }
}

fn render(request: &Request, status: Status, reason: &str, data: &Map<String, Json>) -> Vec<u8> {
    let body = json!({
        "Status": status.as_str(),
        "Reason": reason,
        "PhysicalResourceId": request.physical_resource_id,
        "StackId": request.stack_id,
        "RequestId": request.request_id,
        "LogicalResourceId": request.logical_resource_id,
        "NoEcho": false,
        "Data": data,
    });
    serde_json::to_vec(&body).expect("a JSON value of strings always serializes")
}

/// The response body, at most [`MAX_BODY_BYTES`]: the reason is cut (at a character boundary,
/// ending in `...`) until it fits. The other fields are CloudFormation's own ids and the data
/// the caller chose; if they alone exceed the limit, the body is returned as is.
pub fn body(request: &Request, status: Status, reason: &str, data: &Map<String, Json>) -> Vec<u8> {
    let full = render(request, status, reason, data);
    if full.len() <= MAX_BODY_BYTES {
        return full;
    }
    // Each character of the reason takes at least one byte of the body, so binary search on
    // the number of characters kept finds the longest reason that fits.
    let boundaries: Vec<usize> = reason.char_indices().map(|(at, _)| at).collect();
    // The first `n_chars` characters of the reason.
    let prefix = |n_chars: usize| {
        boundaries
            .get(n_chars)
            .map_or(reason, |&end| &reason[..end])
    };
    let (mut fits, mut too_long) = (0usize, boundaries.len());
    let mut best = render(request, status, ELLIPSIS, data);
    while fits < too_long {
        let keep = (fits + too_long).div_ceil(2);
        let candidate = format!("{}{ELLIPSIS}", prefix(keep));
        let rendered = render(request, status, &candidate, data);
        if rendered.len() <= MAX_BODY_BYTES {
            fits = keep;
            best = rendered;
        } else {
            too_long = keep - 1;
        }
    }
    best
}

/// How hard [`send`] tries.
#[derive(Debug, Clone, Copy)]
pub struct SendPolicy {
    /// Limit of one attempt (connect, send, answer).
    pub attempt_timeout: Duration,
    /// Attempts in all; between them 1 s, 2 s, 4 s, ... (at most 16 s).
    pub attempts: u32,
}

impl Default for SendPolicy {
    fn default() -> Self {
        SendPolicy {
            attempt_timeout: Duration::from_secs(30),
            attempts: 5,
        }
    }
}

/// PUTs `body` to the request's URL exactly as CloudFormation expects (empty content type),
/// retrying transport errors, timeouts and 5xx answers; a 4xx answer is final.
pub async fn send(
    request: &Request,
    body: Vec<u8>,
    policy: SendPolicy,
) -> Result<(), ResponseError> {
    let host = request.host();
    let client = reqwest::Client::builder()
        .timeout(policy.attempt_timeout)
        .connect_timeout(policy.attempt_timeout)
        // A presigned URL is answered where it points; a redirect would be unexpected.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| ResponseError::Undelivered {
            host: host.clone(),
            attempts: 0,
            last: err.to_string(),
        })?;
    let attempts = policy.attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        let answer = client
            .put(&request.response_url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.clone())
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => return Ok(()),
            Ok(answer) => {
                let status = answer.status().as_u16();
                let text = answer.text().await.unwrap_or_default();
                let excerpt: String = text.chars().take(300).collect();
                if (400..500).contains(&status) {
                    return Err(ResponseError::Refused {
                        host,
                        status,
                        body: excerpt,
                    });
                }
                last = format!("HTTP {status}: {excerpt}");
            }
            // The error's text may contain the URL; keep only its kind.
            Err(err) => last = transport_error(&err),
        }
        if attempt < attempts {
            let pause = Duration::from_secs(1u64 << (attempt - 1).min(4));
            tokio::time::sleep(pause).await;
        }
    }
    Err(ResponseError::Undelivered {
        host,
        attempts,
        last,
    })
}

/// Describes a transport error without the URL it carries.
fn transport_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let source = std::error::Error::source(err)
        .map(|source| format!(": {source}"))
        .unwrap_or_default();
    format!("{kind}{source}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            response_url: "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=secret".into(),
            stack_id: "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid".into(),
            request_id: "req-1".into(),
            logical_resource_id: "Deployment".into(),
            physical_resource_id: "deployment-llm-eval".into(),
        }
    }

    fn parsed(bytes: &[u8]) -> Json {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn body_has_every_field() {
        let mut data = Map::new();
        data.insert("AppUrl".into(), "https://d.cloudfront.net".into());
        let got = parsed(&body(&request(), Status::Success, "ok", &data));
        assert_eq!(
            got,
            json!({"Status": "SUCCESS", "Reason": "ok", "PhysicalResourceId": "deployment-llm-eval",
                "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/boot/guid",
                "RequestId": "req-1", "LogicalResourceId": "Deployment", "NoEcho": false,
                "Data": {"AppUrl": "https://d.cloudfront.net"}})
        );
    }

    fn check_fits(reason: &str) {
        let bytes = body(&request(), Status::Failed, reason, &Map::new());
        assert!(bytes.len() <= MAX_BODY_BYTES, "{} bytes", bytes.len());
        let got = parsed(&bytes);
        let kept = got["Reason"].as_str().unwrap();
        assert!(kept.ends_with(ELLIPSIS), "{kept}");
        let kept = kept.strip_suffix(ELLIPSIS).unwrap();
        assert!(reason.starts_with(kept));
        // As long as possible: one more character would not fit.
        let next = reason[kept.len()..].chars().next().unwrap();
        let longer = format!("{kept}{next}{ELLIPSIS}");
        assert!(render(&request(), Status::Failed, &longer, &Map::new()).len() > MAX_BODY_BYTES);
    }

    #[test]
    fn long_ascii_reason_is_cut_to_fit() {
        check_fits(&"x".repeat(10_000));
    }
    #[test]
    fn long_multibyte_reason_is_cut_at_a_char_boundary() {
        check_fits(&"é€😀\"\\\n".repeat(2_000));
    }
    #[test]
    fn short_reason_is_kept() {
        let got = parsed(&body(&request(), Status::Failed, "boom", &Map::new()));
        assert_eq!(got["Reason"], "boom");
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn no_url_no_request() {
        assert_eq!(Request::from_env(&env_of(&[])).unwrap(), None);
    }
    #[test]
    fn partial_request_is_an_error() {
        let err = Request::from_env(&env_of(&[("CFN_RESPONSE_URL", "https://h/x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "CFN_RESPONSE_URL is set but CFN_STACK_ID is not; the bootstrap Lambda sets all CFN_* variables"
        );
    }
    #[test]
    fn url_is_never_shown() {
        let err =
            Request::from_env(&env_of(&[("CFN_RESPONSE_URL", "file:///etc/secret")])).unwrap_err();
        assert!(!err.to_string().contains("secret"));
        assert_eq!(request().host(), "bucket.s3.amazonaws.com");
    }
}
