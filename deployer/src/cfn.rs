//! The one place that talks to CloudFormation: stack state, change sets (create, wait,
//! describe, execute, delete), template upload when a template is over the `TemplateBody`
//! limit, stack deletion, and watching a stack operation through its events until it ends.
//!
//! Commands never call the CloudFormation SDK themselves. Waiting is done here with a short,
//! growing delay (0.5 s up to 5 s) rather than with the SDK's generated waiters, whose delay is
//! fixed at 30 to 120 s: a change set is usually ready in a few seconds, and progress needs the
//! stack's events between polls anyway (as the cdk CLI's activity monitor does).
//!
//! Root cause: when an operation fails, [`Watch::root_cause`] is the first resource event that
//! failed for a reason of its own, not the "Resource creation cancelled" cascade after it, nor
//! the stack's summary event.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{
    Capability, ChangeAction, ChangeSetStatus, ChangeSetType, Parameter, Replacement, StackEvent,
    TemplateStage,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::progress::Progress;

/// Longest a change set may take to be computed.
const CHANGE_SET_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest one stack operation (create, update, delete) is watched.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// At most this many event pages are read per poll (100 events a page).
const MAX_EVENT_PAGES: usize = 20;

/// Delay before the `attempt`-th poll: 0, 0.5 s, 1 s, 2 s, 4 s, then 5 s.
fn poll_delay(attempt: u32) -> Duration {
    match attempt {
        0 => Duration::ZERO,
        n => Duration::from_millis(250u64 << n.min(5)).min(Duration::from_secs(5)),
    }
}

/// A deployed stack as CloudFormation describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackState {
    /// Stack ARN.
    pub id: String,
    /// `CREATE_COMPLETE`, `ROLLBACK_COMPLETE`, ...
    pub status: String,
    /// Why it is in that status, when CloudFormation says.
    pub reason: Option<String>,
    /// Outputs, in CloudFormation's order.
    pub outputs: Vec<(String, String)>,
    /// Parameters it was deployed with.
    pub parameters: Vec<(String, String)>,
}

impl StackState {
    /// A status from which no operation is running.
    pub fn is_settled(&self) -> bool {
        !self.status.ends_with("_IN_PROGRESS")
    }

    /// The value of output `key`.
    pub fn output(&self, key: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// One change of a change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    /// Logical id.
    pub logical_id: String,
    /// Resource type.
    pub resource_type: String,
    /// `True`, `False` or `Conditional` for a modification.
    pub replacement: Option<String>,
}

impl ResourceChange {
    /// A modification that replaces (or may replace) the resource.
    pub fn replaces(&self) -> bool {
        matches!(self.replacement.as_deref(), Some("True" | "Conditional"))
    }
}

/// A computed change set.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    /// Its ARN.
    pub id: String,
    /// What it would do.
    pub changes: Vec<ResourceChange>,
}

/// What CloudFormation answered to a change set request.
#[derive(Debug)]
pub enum Plan {
    /// The stack is already as the template says; the change set was deleted.
    NoChanges,
    /// Changes to review and maybe execute.
    Changes(ChangeSet),
}

/// Where the template of a change set comes from.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    /// Passed inline (at most 51,200 bytes).
    Body(String),
    /// Uploaded to S3 first.
    Url(String),
    /// The template the stack already has (a parameter-only update: `pause`, `resume`).
    Previous,
}

/// How a watched operation ended.
#[derive(Debug)]
pub struct Watch {
    /// The stack's final state (`None` once a deleted stack is gone).
    pub state: Option<StackState>,
    /// The first resource failure and its reason, if any.
    pub root_cause: Option<String>,
    /// Resources that failed to delete, with reasons (for `DELETE_FAILED`).
    pub delete_failures: Vec<String>,
}

fn service_error<E>(err: aws_sdk_cloudformation::error::SdkError<E>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    aws_sdk_cloudformation::Error: From<aws_sdk_cloudformation::error::SdkError<E>>,
{
    anyhow::Error::new(aws_sdk_cloudformation::Error::from(err))
}

/// True when `err` is CloudFormation's "stack does not exist" validation error.
fn is_missing_stack(err: &impl ProvideErrorMetadata) -> bool {
    err.code() == Some("ValidationError")
        && err
            .message()
            .is_some_and(|message| message.contains("does not exist"))
}

/// True when a failed change set only says there was nothing to change.
fn means_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes")
        || reason.contains("No updates are to be performed")
        || reason.contains("No changes")
}

/// A resource event's reason that only follows from another failure.
fn is_cascade(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("resource creation cancelled")
        || reason.contains("resource update cancelled")
        || reason.starts_with("the following resource(s) failed")
}

/// The CloudFormation client of one deployment.
#[derive(Debug, Clone)]
pub struct Cfn {
    client: Client,
    s3: aws_sdk_s3::Client,
}

impl Cfn {
    /// Clients built from `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Cfn {
        Cfn {
            client: Client::new(config),
            s3: aws_sdk_s3::Client::new(config),
        }
    }

    /// The stack named `name`, or `None` when it does not exist (or was deleted).
    pub async fn describe(&self, name: &str) -> anyhow::Result<Option<StackState>> {
        let output = match self.client.describe_stacks().stack_name(name).send().await {
            Ok(output) => output,
            Err(err) => {
                if let Some(service) = err.as_service_error()
                    && is_missing_stack(service)
                {
                    return Ok(None);
                }
                return Err(service_error(err)).with_context(|| format!("describing stack {name}"));
            }
        };
        let Some(stack) = output.stacks().first() else {
            return Ok(None);
        };
        let status = stack
            .stack_status()
            .map(|status| status.as_str().to_owned())
            .unwrap_or_default();
        if status == "DELETE_COMPLETE" {
            return Ok(None);
        }
        Ok(Some(StackState {
            id: stack.stack_id().unwrap_or_default().to_owned(),
            status,
            reason: stack.stack_status_reason().map(str::to_owned),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|output| {
                    Some((
                        output.output_key()?.to_owned(),
                        output.output_value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|parameter| {
                    Some((
                        parameter.parameter_key()?.to_owned(),
                        parameter.parameter_value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
        }))
    }

    /// The template the stack was last deployed with, as submitted.
    pub async fn deployed_template(&self, name: &str) -> anyhow::Result<Option<String>> {
        match self
            .client
            .get_template()
            .stack_name(name)
            .template_stage(TemplateStage::Original)
            .send()
            .await
        {
            Ok(output) => Ok(output.template_body().map(str::to_owned)),
            Err(err) => {
                if let Some(service) = err.as_service_error()
                    && is_missing_stack(service)
                {
                    return Ok(None);
                }
                Err(service_error(err)).with_context(|| format!("reading the template of {name}"))
            }
        }
    }

    /// Puts an oversized template into `bucket` and returns its URL for `TemplateURL`.
    pub async fn upload_template(
        &self,
        bucket: &str,
        stack: &str,
        body: &[u8],
        region: &str,
    ) -> anyhow::Result<String> {
        // Named by content, so a retried `up` reuses the object instead of piling up copies.
        let key = format!("{stack}/{:016x}.template.json", fnv1a(body));
        self.s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.to_vec().into())
            .content_type("application/json")
            .send()
            .await
            .map_err(|err| anyhow::Error::new(aws_sdk_s3::Error::from(err)))
            .with_context(|| format!("uploading the template of {stack} to s3://{bucket}/{key}"))?;
        Ok(format!("https://{bucket}.s3.{region}.amazonaws.com/{key}"))
    }

    /// Creates a change set and waits until CloudFormation has computed it. One with no changes
    /// is deleted and reported as [`Plan::NoChanges`].
    pub async fn plan(
        &self,
        stack: &str,
        template: &TemplateSource,
        parameters: &[(String, String)],
        creates_stack: bool,
    ) -> anyhow::Result<Plan> {
        let parameters = parameters
            .iter()
            .map(|(key, value)| {
                Parameter::builder()
                    .parameter_key(key)
                    .parameter_value(value)
                    .build()
            })
            .collect();
        self.plan_with(stack, template, parameters, creates_stack, "deployer up")
            .await
    }

    /// Plans a parameter-only update of `stack`: its deployed template, `key` set to `value`
    /// and every other parameter at its previous value (`pause`, `resume`).
    pub async fn plan_parameter(
        &self,
        stack: &str,
        current: &StackState,
        key: &str,
        value: &str,
    ) -> anyhow::Result<Plan> {
        let mut parameters: Vec<Parameter> = current
            .parameters
            .iter()
            .filter(|(name, _)| name != key)
            .map(|(name, _)| {
                Parameter::builder()
                    .parameter_key(name)
                    .use_previous_value(true)
                    .build()
            })
            .collect();
        parameters.push(
            Parameter::builder()
                .parameter_key(key)
                .parameter_value(value)
                .build(),
        );
        self.plan_with(
            stack,
            &TemplateSource::Previous,
            parameters,
            false,
            &format!("deployer: {key}={value}"),
        )
        .await
    }

    async fn plan_with(
        &self,
        stack: &str,
        template: &TemplateSource,
        parameters: Vec<Parameter>,
        creates_stack: bool,
        description: &str,
    ) -> anyhow::Result<Plan> {
        let name = format!("deployer-{}", unix_millis());
        let mut request = self
            .client
            .create_change_set()
            .stack_name(stack)
            .change_set_name(&name)
            .change_set_type(if creates_stack {
                ChangeSetType::Create
            } else {
                ChangeSetType::Update
            })
            .description(description)
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .set_parameters(Some(parameters));
        request = match template {
            TemplateSource::Body(body) => request.template_body(body),
            TemplateSource::Url(url) => request.template_url(url),
            TemplateSource::Previous => request.use_previous_template(true),
        };
        let created = request
            .send()
            .await
            .map_err(service_error)
            .with_context(|| format!("creating a change set for {stack}"))?;
        let id = created.id().unwrap_or(&name).to_owned();
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            tokio::time::sleep(poll_delay(attempt)).await;
            attempt += 1;
            let described = self
                .client
                .describe_change_set()
                .change_set_name(&id)
                .stack_name(stack)
                .send()
                .await
                .map_err(service_error)
                .with_context(|| format!("reading the change set of {stack}"))?;
            let status = described.status().cloned();
            match status {
                Some(ChangeSetStatus::CreateComplete) => {
                    let changes = self.changes(stack, &id, described).await?;
                    // CloudFormation fails a change set without changes; emulators may
                    // complete it empty instead. Either way there is nothing to execute.
                    if changes.is_empty() && !creates_stack {
                        self.discard(stack, &id).await?;
                        return Ok(Plan::NoChanges);
                    }
                    return Ok(Plan::Changes(ChangeSet { id, changes }));
                }
                Some(ChangeSetStatus::Failed) => {
                    let reason = described.status_reason().unwrap_or_default().to_owned();
                    if means_no_changes(&reason) {
                        self.discard(stack, &id).await?;
                        return Ok(Plan::NoChanges);
                    }
                    bail!("CloudFormation could not plan the changes to {stack}: {reason}");
                }
                _ if started.elapsed() > CHANGE_SET_TIMEOUT => bail!(
                    "the change set of {stack} was not ready after {} minutes",
                    CHANGE_SET_TIMEOUT.as_secs() / 60
                ),
                _ => {}
            }
        }
    }

    /// Every change of a computed change set (all pages).
    async fn changes(
        &self,
        stack: &str,
        id: &str,
        first: aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
    ) -> anyhow::Result<Vec<ResourceChange>> {
        let mut changes = Vec::new();
        let mut page = first;
        loop {
            for change in page.changes() {
                let Some(resource) = change.resource_change() else {
                    continue;
                };
                changes.push(ResourceChange {
                    action: resource
                        .action()
                        .map(ChangeAction::as_str)
                        .unwrap_or("Unknown")
                        .to_owned(),
                    logical_id: resource
                        .logical_resource_id()
                        .unwrap_or_default()
                        .to_owned(),
                    resource_type: resource.resource_type().unwrap_or_default().to_owned(),
                    replacement: resource
                        .replacement()
                        .map(Replacement::as_str)
                        .map(str::to_owned),
                });
            }
            let Some(token) = page.next_token().map(str::to_owned) else {
                return Ok(changes);
            };
            page = self
                .client
                .describe_change_set()
                .change_set_name(id)
                .stack_name(stack)
                .next_token(token)
                .send()
                .await
                .map_err(service_error)
                .with_context(|| format!("reading the change set of {stack}"))?;
        }
    }

    /// Deletes a change set that will not be executed. A stack that only existed for a CREATE
    /// change set (`REVIEW_IN_PROGRESS`, no resources) is deleted with it, as cdk does.
    pub async fn discard(&self, stack: &str, change_set_id: &str) -> anyhow::Result<()> {
        self.client
            .delete_change_set()
            .change_set_name(change_set_id)
            .stack_name(stack)
            .send()
            .await
            .map_err(service_error)
            .with_context(|| format!("deleting the change set of {stack}"))?;
        if let Some(state) = self.describe(stack).await?
            && state.status == "REVIEW_IN_PROGRESS"
        {
            self.client
                .delete_stack()
                .stack_name(stack)
                .send()
                .await
                .map_err(service_error)
                .with_context(|| format!("deleting the empty stack {stack}"))?;
        }
        Ok(())
    }

    /// Executes a change set and watches the stack until the operation ends.
    pub async fn execute(
        &self,
        stack: &str,
        change_set: &ChangeSet,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<Watch> {
        let since = self.latest_event_id(stack).await?;
        self.client
            .execute_change_set()
            .change_set_name(&change_set.id)
            .stack_name(stack)
            .send()
            .await
            .map_err(service_error)
            .with_context(|| format!("executing the change set of {stack}"))?;
        self.watch(stack, since, change_set.changes.len(), progress)
            .await
    }

    /// Deletes a stack and watches it until it is gone or the deletion failed.
    pub async fn delete(
        &self,
        stack: &str,
        n_resources: usize,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<Watch> {
        let since = self.latest_event_id(stack).await?;
        self.client
            .delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(service_error)
            .with_context(|| format!("deleting stack {stack}"))?;
        self.watch(stack, since, n_resources, progress).await
    }

    /// Waits for an operation already running on `stack` (one an interrupted `up` left).
    pub async fn wait_settled(
        &self,
        stack: &str,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<Option<StackState>> {
        let since = self.latest_event_id(stack).await?;
        Ok(self.watch(stack, since, 0, progress).await?.state)
    }

    /// Id of the newest event of `stack`, so watching only shows this operation's events.
    async fn latest_event_id(&self, stack: &str) -> anyhow::Result<Option<String>> {
        match self
            .client
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .stack_events()
                .first()
                .and_then(|event| event.event_id().map(str::to_owned))),
            Err(err) => {
                if let Some(service) = err.as_service_error()
                    && is_missing_stack(service)
                {
                    return Ok(None);
                }
                Err(service_error(err)).with_context(|| format!("reading the events of {stack}"))
            }
        }
    }

    /// Events newer than `since`, oldest first; `None` when the stack is gone.
    async fn events_since(
        &self,
        stack: &str,
        since: Option<&str>,
    ) -> anyhow::Result<Option<Vec<StackEvent>>> {
        let mut newest_first = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_EVENT_PAGES {
            let page = match self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(err) => {
                    if let Some(service) = err.as_service_error()
                        && is_missing_stack(service)
                    {
                        return Ok(None);
                    }
                    return Err(service_error(err))
                        .with_context(|| format!("reading the events of {stack}"));
                }
            };
            for event in page.stack_events() {
                if since.is_some() && event.event_id() == since {
                    newest_first.reverse();
                    return Ok(Some(newest_first));
                }
                newest_first.push(event.clone());
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        newest_first.reverse();
        Ok(Some(newest_first))
    }

    /// Polls events and state until the operation on `stack` ends.
    async fn watch(
        &self,
        stack: &str,
        since: Option<String>,
        n_resources: usize,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<Watch> {
        let started = Instant::now();
        let mut last_seen = since;
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut root_cause: Option<String> = None;
        let mut delete_failures = Vec::new();
        progress.start(stack, n_resources);
        let mut attempt = 0;
        loop {
            tokio::time::sleep(poll_delay(attempt)).await;
            attempt += 1;
            let events = self.events_since(stack, last_seen.as_deref()).await?;
            for event in events.iter().flatten() {
                last_seen = event.event_id().map(str::to_owned);
                let logical_id = event.logical_resource_id().unwrap_or_default();
                let status = event
                    .resource_status()
                    .map(|status| status.as_str())
                    .unwrap_or_default();
                let reason = event.resource_status_reason().unwrap_or_default();
                let is_stack = event.resource_type() == Some("AWS::CloudFormation::Stack");
                if status.ends_with("_FAILED") && !is_stack {
                    if root_cause.is_none() && !is_cascade(reason) {
                        root_cause = Some(format!(
                            "{logical_id} ({}): {status}: {reason}",
                            event.resource_type().unwrap_or_default()
                        ));
                    }
                    if status == "DELETE_FAILED" {
                        delete_failures.push(format!("{logical_id}: {reason}"));
                    }
                }
                if status.ends_with("_COMPLETE") && !is_stack {
                    done.insert(logical_id.to_owned());
                }
                progress.event(&crate::progress::Event {
                    logical_id,
                    resource_type: event.resource_type().unwrap_or_default(),
                    status,
                    reason,
                    done: done.len(),
                });
            }
            let state = self.describe(stack).await?;
            let finished = match &state {
                None => true,
                Some(state) => state.is_settled() && state.status != "REVIEW_IN_PROGRESS",
            };
            if finished {
                progress.finish(
                    state
                        .as_ref()
                        .map_or("DELETE_COMPLETE", |s| s.status.as_str()),
                );
                return Ok(Watch {
                    state,
                    root_cause,
                    delete_failures,
                });
            }
            if started.elapsed() > OPERATION_TIMEOUT {
                bail!(
                    "{stack} was still in progress after {} minutes; `deployer status` shows where it is",
                    OPERATION_TIMEOUT.as_secs() / 60
                );
            }
        }
    }
}

/// Milliseconds since 1970, for unique change set names.
fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default()
}

/// 64-bit FNV-1a of `bytes` (content-addressed object keys; not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_reasons() {
        assert!(is_cascade("Resource creation cancelled"));
        assert!(is_cascade(
            "The following resource(s) failed to create: [Vpc]. "
        ));
        assert!(!is_cascade("The maximum number of VPCs has been reached."));
    }

    #[test]
    fn no_change_reasons() {
        assert!(means_no_changes(
            "The submitted information didn't contain changes. Submit different information to create a change set."
        ));
        assert!(!means_no_changes("Template format error"));
    }

    #[test]
    fn delays_grow_to_five_seconds() {
        assert_eq!(poll_delay(0), Duration::ZERO);
        assert_eq!(poll_delay(1), Duration::from_millis(500));
        assert_eq!(poll_delay(9), Duration::from_secs(5));
    }
}
