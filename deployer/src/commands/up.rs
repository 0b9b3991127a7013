//! `deployer up`: deploys every stack of the configuration, in dependency order.
//!
//! Per stack: skip it when the deployed template and parameters are exactly what would be
//! deployed (no change set at all, as cdk does); otherwise create a change set, print a summary
//! (add / modify / replace / remove), ask for approval when the changes need it, execute it and
//! watch the stack until the operation ends. A change set without changes is deleted and the
//! stack reported unchanged. Stacks whose dependencies are done deploy at the same time, at
//! most `--concurrency` at once.
//!
//! Recovery: a stack left in `ROLLBACK_COMPLETE` by a failed create is deleted and created
//! again; one still in progress (an `up` interrupted with Ctrl-C) is waited for first; one in
//! `UPDATE_ROLLBACK_FAILED` stops `up` with the `ContinueUpdateRollback` hint. So after any
//! interruption the next `up` continues from where AWS is.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use stacks::SynthStack;
use stacks::model::validate::TEMPLATE_BODY_LIMIT;
use stacks::stacks::{PAUSED_PARAMETER, toolkit};

use crate::cfn::{Cfn, Plan, ResourceChange, StackState, TemplateSource};
use crate::cognito::{Created, Email, Pool};
use crate::commands::image::BuilderArg;
use crate::config::ConfigArgs;
use crate::deployment::Deployment;
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;
use crate::progress;

/// Which changes need a yes before they are executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Approval {
    /// Never ask.
    Never,
    /// Ask for any change.
    AnyChange,
    /// Ask when IAM or security-group resources are added or changed (they can widen access).
    Broadening,
}

/// Arguments of `deployer up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Deploy this existing image (by digest or tag) instead of building one; it must be in the
    /// toolkit's repository `<prefix>-app` or a public registry.
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Which changes need approval; without a terminal, a change that needs it fails the run.
    #[arg(long, value_enum, default_value_t = Approval::Broadening)]
    pub require_approval: Approval,
    /// How many stacks may deploy at the same time.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub concurrency: u16,
    /// Also write the outputs as JSON, `{"<stack>": {"<OutputKey>": "<value>"}}` (cdk's shape).
    #[arg(long, value_name = "FILE")]
    pub outputs_file: Option<PathBuf>,
    /// How the app image is built when no --image is given.
    #[arg(long, value_enum, default_value = "native")]
    pub builder: BuilderArg,
    /// Pack this already built llm-eval binary into the image instead of compiling one.
    #[arg(long, value_name = "PATH", conflicts_with = "image")]
    pub binary: Option<PathBuf>,
    /// Create this first app user; Cognito emails them a temporary password (never printed).
    #[arg(long, value_name = "ADDRESS")]
    pub admin_email: Option<String>,
    /// Push to this registry endpoint instead of the repository's own host name, with the same
    /// ECR credentials: an ECR interface endpoint without private DNS
    /// (`vpce-....dkr.ecr.<region>.vpce.amazonaws.com`), or a local registry standing in for ECR
    /// in tests. The task still pulls by the repository's URI.
    #[arg(
        long,
        value_name = "HOST[:PORT]",
        env = "DEPLOY_REGISTRY_ENDPOINT",
        conflicts_with = "image"
    )]
    pub registry_endpoint: Option<String>,
}

/// The managed prefix list of CloudFront's origin-facing addresses.
pub const CLOUDFRONT_PREFIX_LIST: &str = "com.amazonaws.global.cloudfront.origin-facing";

/// How one stack's deployment ended.
#[derive(Debug)]
enum Deployed {
    /// Nothing to do.
    Unchanged(StackState),
    /// Created or updated.
    Changed(StackState),
}

impl Deployed {
    fn state(&self) -> &StackState {
        match self {
            Deployed::Unchanged(state) | Deployed::Changed(state) => state,
        }
    }
}

/// Runs `deployer up`.
pub async fn run(
    args: &UpArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let deployment = Deployment::open(&args.config, env).await?;
    let account = crate::aws::account_id(&deployment.sdk).await?;
    eprintln!(
        "deploying {} stack(s) to account {account}, region {}",
        deployment.stacks.len(),
        deployment.cfg.region
    );
    // What the account will cost while it sits idle, before any change needs approval.
    if let Some(summary) = crate::commands::cost::idle_summary(&deployment.cfg, &deployment.stacks)
    {
        eprintln!("{summary}");
    }
    if args.builder == BuilderArg::Docker && args.binary.is_some() {
        return Err(usage(anyhow::anyhow!(
            "--binary packs a built binary natively; the Docker builder compiles inside app/llm-eval/Dockerfile (drop one of them)"
        )));
    }
    let admin_email = args
        .admin_email
        .as_deref()
        .map(|email| {
            Email::parse(email).map_err(|why| usage(anyhow::anyhow!("--admin-email: {why}")))
        })
        .transpose()?;
    if admin_email.is_some() && deployment.stack("app").is_none() {
        return Err(usage(anyhow::anyhow!(
            "--admin-email needs the app stack (DEPLOY_PROMPT_APP is off)"
        )));
    }
    // `--image` is checked now; otherwise the image is built and pushed once the toolkit
    // stack (its repository) is deployed, just before the first stack that needs it.
    let mut image = match &args.image {
        Some(image) => Some(check_image(image, &deployment.cfg.prefix, &account)?),
        None => None,
    };
    let mut results: BTreeMap<String, Deployed> = BTreeMap::new();
    let mut remaining: Vec<&SynthStack> = deployment.stacks.iter().collect();
    while !remaining.is_empty() {
        // Every stack whose dependencies are done; the manifest order guarantees progress.
        let (ready, later): (Vec<&SynthStack>, Vec<&SynthStack>) =
            remaining.into_iter().partition(|stack| {
                stack.depends_on.iter().all(|dependency| {
                    results.contains_key(dependency)
                        || !deployment.stacks.iter().any(|s| &s.name == dependency)
                })
            });
        if ready.is_empty() {
            bail!("internal: stack dependencies form a cycle");
        }
        remaining = later;
        if image.is_none() && ready.iter().any(|stack| needs_image(stack)) {
            image = Some(build_and_push(args, &deployment).await?);
        }
        for wave in ready.chunks(usize::from(args.concurrency)) {
            let concurrent = wave.len() > 1;
            let mut tasks = Vec::with_capacity(wave.len());
            for stack in wave {
                let parameters = parameters(stack, &deployment, image.as_deref()).await?;
                let source = template_source(stack, &deployment, &results).await?;
                let cfn = deployment.cfn.clone();
                let stack = (*stack).clone();
                let approval = args.require_approval;
                tasks.push(tokio::spawn(async move {
                    let outcome =
                        deploy_stack(&cfn, &stack, source, &parameters, approval, concurrent).await;
                    (stack.name, outcome)
                }));
            }
            for task in tasks {
                let (name, outcome) = task.await.context("a deployment task stopped")?;
                let deployed = outcome?;
                match &deployed {
                    Deployed::Unchanged(_) => eprintln!("{name}: unchanged"),
                    Deployed::Changed(state) => eprintln!("{name}: {}", state.status),
                }
                results.insert(name, deployed);
            }
        }
    }
    if let Some(email) = &admin_email {
        create_admin(&deployment, &results, email).await?;
    }
    let outputs = outputs_json(&deployment, &results);
    stdout.print(render_outputs(&deployment, &results))?;
    if let Some(path) = &args.outputs_file {
        let mut text = serde_json::to_string_pretty(&outputs)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Outcome::Done)
}

/// Whether `stack` takes the image as a parameter.
fn needs_image(stack: &SynthStack) -> bool {
    stack
        .template
        .parameters()
        .any(|(id, parameter)| id.as_str() == "ImageUri" && parameter.default.is_none())
}

/// Builds the app image (natively or with Docker) and pushes it to the toolkit's repository;
/// returns its URI by digest. A push of an image the registry has uploads nothing.
async fn build_and_push(args: &UpArgs, deployment: &Deployment) -> anyhow::Result<String> {
    let repository_name = toolkit::repository_name(&deployment.cfg.prefix);
    let repository = crate::image::ecr::repository_uri(&deployment.sdk, &repository_name)
        .await
        .with_context(|| {
            format!("finding the image repository {repository_name} (the toolkit stack's)")
        })?;
    let app = deployment
        .stack("app")
        .context("internal: an image is needed only by the app stack")?;
    let platform = crate::image::Platform::of_task_definition(&app.template.to_json_value())
        .context("internal: the app stack's task definition has no known CPU architecture")?;
    let workspace = match &args.binary {
        Some(_) => PathBuf::from("."),
        None => crate::commands::image::find_workspace()?,
    };
    let options = crate::image::BuildOptions {
        binary: args.binary.clone(),
        platform,
        out_dir: workspace.join(crate::commands::image::DEFAULT_LAYOUT),
        workspace,
        builder: match args.builder {
            BuilderArg::Native => crate::image::Builder::Native,
            BuilderArg::Docker => crate::image::Builder::Docker,
        },
    };
    eprintln!("building the app image ({platform})");
    let built = tokio::task::spawn_blocking(move || crate::image::build(&options))
        .await
        .context("the image build stopped")?
        .context("building the app image")?;
    let host = repository.split('/').next().unwrap_or_default().to_owned();
    let auth = crate::image::ecr_auth(&deployment.sdk, &host)
        .await
        .context("getting push credentials for the image repository (ECR GetAuthorizationToken)")?;
    // The endpoint changes where the bytes go, not the repository the task pulls from.
    let push_to = match &args.registry_endpoint {
        Some(endpoint) => {
            let path = repository.split_once('/').map_or("", |(_, path)| path);
            format!("{}/{path}", endpoint.trim_end_matches('/'))
        }
        None => repository.clone(),
    };
    let target = crate::image::PushTarget {
        repository: push_to.clone(),
        auth,
    };
    let n_layers = built.layers.len();
    let pushed = crate::image::push(&built, &target, |event| {
        crate::commands::image::report(&event, n_layers);
    })
    .await
    .with_context(|| format!("pushing the app image to {push_to}"))?;
    let uri = format!("{repository}@{}", pushed.digest);
    eprintln!("image {uri} ({} blobs uploaded)", pushed.n_blobs_uploaded);
    Ok(uri)
}

/// `--admin-email`: creates the first user in the app's pool, once (a re-run leaves it).
async fn create_admin(
    deployment: &Deployment,
    results: &BTreeMap<String, Deployed>,
    email: &Email,
) -> anyhow::Result<()> {
    let app = deployment
        .stack("app")
        .context("internal: --admin-email is checked against the app stack")?;
    let pool_id = results
        .get(&app.name)
        .and_then(|deployed| deployed.state().output("UserPoolId"))
        .with_context(|| format!("{} has no UserPoolId output for --admin-email", app.name))?;
    let pool = Pool::new(&deployment.sdk, pool_id);
    let policy = pool.password_policy().await?;
    match pool.create(email, policy, true).await? {
        Created::New(_) => {
            eprintln!("created app user {email}; Cognito emails them a temporary password")
        }
        Created::Exists => eprintln!("app user {email} exists (unchanged)"),
    }
    Ok(())
}

/// Checks `--image`: a private ECR image must be in this deployment's repository, because the
/// task's execution role may pull only from there.
pub(crate) fn check_image(image: &str, prefix: &str, account: &str) -> anyhow::Result<String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return Err(usage(anyhow::anyhow!(
            "--image: `{image}` is not an image URI"
        )));
    }
    let host = image.split('/').next().unwrap_or_default();
    if host.contains(".dkr.ecr.") {
        let repository = image
            .split_once('/')
            .map(|(_, rest)| rest.split(['@', ':']).next().unwrap_or_default())
            .unwrap_or_default();
        let expected = toolkit::repository_name(prefix);
        if repository != expected || !host.starts_with(&format!("{account}.")) {
            return Err(usage(anyhow::anyhow!(
                "--image: `{image}` is not in this deployment's repository ({account}.dkr.ecr.<region>.amazonaws.com/{expected}); the task may only pull from there"
            )));
        }
    }
    Ok(image.to_owned())
}

/// The parameters the manifest marks `supplied_by_deployer`, for `stack`.
pub(crate) async fn parameters(
    stack: &SynthStack,
    deployment: &Deployment,
    image: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut values = Vec::new();
    for (id, parameter) in stack.template.parameters() {
        if parameter.default.is_some() {
            continue;
        }
        let value = match id.as_str() {
            "ImageUri" => image
                .context("internal: the app stack needs an image")?
                .to_owned(),
            "CloudFrontPrefixListId" => cloudfront_prefix_list(&deployment.sdk).await?,
            other => bail!("internal: no value for parameter {other} of {}", stack.name),
        };
        values.push((id.as_str().to_owned(), value));
    }
    Ok(values)
}

/// The id of CloudFront's origin-facing managed prefix list in this region.
async fn cloudfront_prefix_list(sdk: &aws_config::SdkConfig) -> anyhow::Result<String> {
    let answer = aws_sdk_ec2::Client::new(sdk)
        .describe_managed_prefix_lists()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("prefix-list-name")
                .values(CLOUDFRONT_PREFIX_LIST)
                .build(),
        )
        .send()
        .await
        .map_err(|err| anyhow::Error::new(aws_sdk_ec2::Error::from(err)))
        .context(
            "looking up CloudFront's origin-facing prefix list (EC2 DescribeManagedPrefixLists)",
        )?;
    answer
        .prefix_lists()
        .iter()
        .find(|list| list.prefix_list_name() == Some(CLOUDFRONT_PREFIX_LIST))
        .and_then(|list| list.prefix_list_id())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "the managed prefix list {CLOUDFRONT_PREFIX_LIST} does not exist in this region"
            )
        })
}

/// The template inline, or uploaded to the toolkit's bucket when over the body limit.
async fn template_source(
    stack: &SynthStack,
    deployment: &Deployment,
    results: &BTreeMap<String, Deployed>,
) -> anyhow::Result<TemplateSource> {
    let body = stack.template.to_json_bytes();
    if body.len() <= TEMPLATE_BODY_LIMIT {
        return Ok(TemplateSource::Body(String::from_utf8(body)?));
    }
    let bucket = deployment
        .stack("toolkit")
        .and_then(|toolkit| results.get(&toolkit.name))
        .and_then(|deployed| deployed.state().output(toolkit::TEMPLATES_BUCKET_OUTPUT))
        .with_context(|| format!("{} is over {TEMPLATE_BODY_LIMIT} bytes but the toolkit stack has no templates bucket", stack.name))?
        .to_owned();
    let url = deployment
        .cfn
        .upload_template(&bucket, &stack.name, &body, &deployment.cfg.region)
        .await?;
    Ok(TemplateSource::Url(url))
}

/// Deploys one stack; see the module docs for the rules.
async fn deploy_stack(
    cfn: &Cfn,
    stack: &SynthStack,
    source: TemplateSource,
    parameters: &[(String, String)],
    approval: Approval,
    concurrent: bool,
) -> anyhow::Result<Deployed> {
    let name = stack.name.as_str();
    let mut display: Box<dyn progress::Progress> = if concurrent {
        Box::new(progress::Lines::default())
    } else {
        progress::for_stderr()
    };
    let mut state = cfn.describe(name).await?;
    if let Some(current) = &state
        && !current.is_settled()
        && current.status != "REVIEW_IN_PROGRESS"
    {
        eprintln!(
            "{name}: {} (an earlier operation); waiting for it to end",
            current.status
        );
        state = cfn.wait_settled(name, display.as_mut()).await?;
    }
    if let Some(current) = &state {
        match current.status.as_str() {
            "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => {
                eprintln!(
                    "{name}: {} after a failed create; deleting it to create it again",
                    current.status
                );
                let watch = cfn.delete(name, 0, display.as_mut()).await?;
                if watch.state.is_some() {
                    bail!(
                        "{name}: could not delete the failed stack: {}",
                        watch.delete_failures.join("; ")
                    );
                }
                state = None;
            }
            "UPDATE_ROLLBACK_FAILED" => bail!(
                "{name} is in UPDATE_ROLLBACK_FAILED: fix the resource that blocks the rollback, then run `aws cloudformation continue-update-rollback --stack-name {name}` and `deployer up` again"
            ),
            "DELETE_FAILED" => bail!(
                "{name} is in DELETE_FAILED from an earlier `deployer down`; run `deployer down` again (it names the resources that block it)"
            ),
            _ => {}
        }
    }
    // A paused stack stays paused: `up` updates what is deployed, `resume` runs it again.
    let mut parameters = parameters.to_vec();
    if let Some(current) = &state
        && crate::commands::pause::is_paused(current)
        && stack
            .template
            .parameters()
            .any(|(id, _)| id.as_str() == PAUSED_PARAMETER)
    {
        eprintln!("{name}: paused; it stays paused (`deployer resume` runs it again)");
        parameters.push((PAUSED_PARAMETER.to_owned(), "true".to_owned()));
    }
    let parameters = parameters.as_slice();
    let creates_stack = state
        .as_ref()
        .is_none_or(|current| current.status == "REVIEW_IN_PROGRESS");
    // Compared with the template itself, inline or uploaded (a template over the body limit
    // is unchanged just the same, and needs no change set to find out).
    let body = String::from_utf8(stack.template.to_json_bytes())?;
    if let Some(current) = &state
        && !creates_stack
        && current.status.ends_with("_COMPLETE")
        && !current.status.contains("ROLLBACK")
        && same_parameters(&current.parameters, parameters)
        && cfn
            .deployed_template(name)
            .await?
            .is_some_and(|deployed| same_template(&deployed, &body))
    {
        return Ok(Deployed::Unchanged(current.clone()));
    }
    let change_set = match cfn.plan(name, &source, parameters, creates_stack).await? {
        Plan::NoChanges => {
            let current = cfn
                .describe(name)
                .await?
                .with_context(|| format!("{name} disappeared"))?;
            return Ok(Deployed::Unchanged(current));
        }
        Plan::Changes(change_set) => change_set,
    };
    eprint!("{}", summary(name, &change_set.changes));
    if needs_approval(approval, &change_set.changes) && !confirm(name)? {
        cfn.discard(name, &change_set.id).await?;
        bail!("{name}: changes not approved; nothing was changed");
    }
    let watch = cfn.execute(name, &change_set, display.as_mut()).await?;
    let final_state = watch
        .state
        .with_context(|| format!("{name} was deleted while deploying"))?;
    let succeeded = matches!(
        final_state.status.as_str(),
        "CREATE_COMPLETE" | "UPDATE_COMPLETE"
    );
    if !succeeded {
        let cause = watch
            .root_cause
            .or(final_state.reason.clone())
            .unwrap_or_else(|| "CloudFormation gave no reason".to_owned());
        let next = match final_state.status.as_str() {
            "ROLLBACK_COMPLETE" => "the next `deployer up` deletes it and creates it again",
            "UPDATE_ROLLBACK_COMPLETE" => {
                "the stack is back as it was; fix the cause and run `deployer up` again"
            }
            "UPDATE_ROLLBACK_FAILED" => {
                "run `aws cloudformation continue-update-rollback --stack-name <stack>` once the blocking resource is fixed"
            }
            _ => "see `deployer status`",
        };
        bail!(
            "{name} failed: {cause}\n  final state: {}\n  next: {next}",
            final_state.status
        );
    }
    Ok(Deployed::Changed(final_state))
}

/// The same template, compared as data: CloudFormation returns what was submitted, but a
/// template first deployed as YAML or reformatted by another tool is still the same template.
fn same_template(deployed: &str, body: &str) -> bool {
    let parse = |text: &str| -> Option<serde_json::Value> {
        serde_json::from_str(text)
            .ok()
            .or_else(|| serde_yaml::from_str(text).ok())
    };
    deployed == body || (parse(deployed).is_some() && parse(deployed) == parse(body))
}

/// Parameters equal as sets (CloudFormation may list them in any order).
fn same_parameters(deployed: &[(String, String)], wanted: &[(String, String)]) -> bool {
    let mut deployed: Vec<&(String, String)> = deployed
        .iter()
        .filter(|(key, _)| wanted.iter().any(|(name, _)| name == key))
        .collect();
    let mut wanted: Vec<&(String, String)> = wanted.iter().collect();
    deployed.sort();
    wanted.sort();
    deployed == wanted
}

/// The readable summary of a change set: one line per change, replacements marked.
pub fn summary(stack: &str, changes: &[ResourceChange]) -> String {
    let mut text = format!("{stack}: {} change(s)\n", changes.len());
    for change in changes {
        let verb = match change.action.as_str() {
            "Add" => "add",
            "Remove" => "remove",
            "Modify" if change.replaces() => "REPLACE",
            "Modify" => "modify",
            other => other,
        };
        let note = if change.replacement.as_deref() == Some("Conditional") {
            " (may be replaced)"
        } else {
            ""
        };
        text.push_str(&format!(
            "  {verb:<8} {} {}{note}\n",
            change.logical_id, change.resource_type
        ));
    }
    text
}

/// IAM and security-group resources: changes to them can widen access.
fn is_broadening(change: &ResourceChange) -> bool {
    let widening_types = ["AWS::IAM::", "AWS::EC2::SecurityGroup"];
    change.action != "Remove"
        && widening_types
            .iter()
            .any(|prefix| change.resource_type.starts_with(prefix))
}

fn needs_approval(approval: Approval, changes: &[ResourceChange]) -> bool {
    match approval {
        Approval::Never => false,
        Approval::AnyChange => !changes.is_empty(),
        Approval::Broadening => changes.iter().any(is_broadening),
    }
}

/// Asks on the terminal; without one, fails naming `--require-approval never`, as cdk does.
fn confirm(stack: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "{stack}: these changes need approval (IAM or security groups, see above) and there is no terminal to ask; rerun with `--require-approval never` to deploy them"
        );
    }
    eprint!("{stack}: deploy these changes? [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .take(16)
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Outputs in cdk's `--outputs-file` shape, stacks in deploy order.
fn outputs_json(
    deployment: &Deployment,
    results: &BTreeMap<String, Deployed>,
) -> serde_json::Value {
    let mut all = serde_json::Map::new();
    for stack in &deployment.stacks {
        if let Some(deployed) = results.get(&stack.name) {
            let outputs: serde_json::Map<String, serde_json::Value> = deployed
                .state()
                .outputs
                .iter()
                .map(|(key, value)| (key.clone(), value.clone().into()))
                .collect();
            all.insert(stack.name.clone(), outputs.into());
        }
    }
    all.into()
}

/// Outputs as text: the app URL first, then every stack's outputs.
fn render_outputs(deployment: &Deployment, results: &BTreeMap<String, Deployed>) -> String {
    let mut text = String::new();
    for stack in &deployment.stacks {
        let Some(deployed) = results.get(&stack.name) else {
            continue;
        };
        let state = deployed.state();
        if state.outputs.is_empty() {
            continue;
        }
        text.push_str(&format!("{}\n", stack.name));
        for (key, value) in &state.outputs {
            text.push_str(&format!("  {key} = {value}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: &str, kind: &str, replacement: Option<&str>) -> ResourceChange {
        ResourceChange {
            action: action.into(),
            logical_id: "X".into(),
            resource_type: kind.into(),
            replacement: replacement.map(str::to_owned),
        }
    }

    #[test]
    fn replacement_is_highlighted() {
        let text = summary(
            "s",
            &[
                change("Modify", "AWS::EC2::Subnet", Some("True")),
                change("Add", "AWS::S3::Bucket", None),
            ],
        );
        assert_eq!(
            text,
            "s: 2 change(s)\n  REPLACE  X AWS::EC2::Subnet\n  add      X AWS::S3::Bucket\n"
        );
    }

    #[test]
    fn broadening_needs_approval() {
        let iam = [change("Add", "AWS::IAM::Role", None)];
        let bucket = [change("Add", "AWS::S3::Bucket", None)];
        assert!(needs_approval(Approval::Broadening, &iam));
        assert!(!needs_approval(Approval::Broadening, &bucket));
        assert!(needs_approval(Approval::AnyChange, &bucket));
        assert!(!needs_approval(Approval::Never, &iam));
    }

    #[test]
    fn image_outside_the_repository_is_refused() {
        assert!(
            check_image(
                "123.dkr.ecr.us-east-1.amazonaws.com/llm-eval-app@sha256:ab",
                "llm-eval",
                "123"
            )
            .is_ok()
        );
        assert!(
            check_image(
                "123.dkr.ecr.us-east-1.amazonaws.com/other:1",
                "llm-eval",
                "123"
            )
            .is_err()
        );
        assert!(check_image("public.ecr.aws/x/y:1", "llm-eval", "123").is_ok());
        assert!(check_image("a b", "llm-eval", "123").is_err());
    }
}
