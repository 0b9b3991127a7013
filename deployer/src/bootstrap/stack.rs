//! `cfn_bootstrap.yaml` as a stack of the current account, driven from a terminal: deploy it
//! (the console form's parameters from flags, environment and config file), delete it, show it;
//! while CloudFormation works, follow the CodeBuild build its custom resource starts (see
//! [`crate::codebuild`]), and on failure show the stack's root cause and the build log's tail.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use stacks::StackConfig;
use stacks::model::validate::TEMPLATE_BODY_LIMIT;
use tokio::sync::watch;

use crate::cfn::{Cfn, ChangeSet, Plan, StackState, TemplateSource, Watch};
use crate::codebuild::{self, BuildState, Project};
use crate::outcome::usage;
use crate::progress;

/// The template, as committed at the top of the repository.
pub const TEMPLATE: &str = include_str!("../../../cfn_bootstrap.yaml");

/// The console form's parameters that are not deployer settings.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// `SourceRepositoryUrl`.
    pub source_repository_url: String,
    /// `SourceVersion`.
    pub source_version: String,
    /// `SourceS3Location`.
    pub source_s3_location: String,
    /// `AdminEmail`.
    pub admin_email: String,
    /// `BuildComputeType`.
    pub build_compute_type: String,
    /// `PurgeOnDelete` (`yes` / `no`).
    pub purge_on_delete: bool,
    /// `RedeployToken`.
    pub redeploy_token: String,
}

/// The stack's parameters: the deployer settings the template takes and the form's own, under
/// the template's names. Checks what the template's `Rules` check, so the error comes before
/// any AWS call and names the flags.
pub fn parameters(cfg: &StackConfig, form: &Form) -> anyhow::Result<Vec<(String, String)>> {
    let repository = !form.source_repository_url.is_empty();
    let s3 = !form.source_s3_location.is_empty();
    if repository == s3 {
        return Err(usage(anyhow::anyhow!(
            "give exactly one source of the deployer: --source-repository-url (DEPLOY_SOURCE_REPOSITORY_URL, a https://github.com/OWNER/REPOSITORY) or --source-s3-location (DEPLOY_SOURCE_S3_LOCATION, BUCKET/KEY.zip)"
        )));
    }
    if !form.admin_email.is_empty() {
        crate::cognito::Email::parse(&form.admin_email)
            .map_err(|why| usage(anyhow::anyhow!("--admin-email (DEPLOY_ADMIN_EMAIL): {why}")))?;
        if !cfg.deploy_prompt_app {
            return Err(usage(anyhow::anyhow!(
                "--admin-email needs the app stack (DEPLOY_PROMPT_APP is off)"
            )));
        }
    }
    let yes_no = |on: bool| if on { "yes" } else { "no" }.to_owned();
    Ok(vec![
        (
            "SourceRepositoryUrl".into(),
            form.source_repository_url.clone(),
        ),
        ("SourceVersion".into(), form.source_version.clone()),
        ("SourceS3Location".into(), form.source_s3_location.clone()),
        ("StackPrefix".into(), cfg.prefix.clone()),
        ("DeployPromptApp".into(), yes_no(cfg.deploy_prompt_app)),
        (
            "DeploySageMakerDomain".into(),
            yes_no(cfg.deploy_sagemaker_domain),
        ),
        ("StudioGitRepo".into(), cfg.studio_git_repo.clone()),
        ("AdminEmail".into(), form.admin_email.clone()),
        ("BuildComputeType".into(), form.build_compute_type.clone()),
        ("PurgeOnDelete".into(), yes_no(form.purge_on_delete)),
        ("RedeployToken".into(), form.redeploy_token.clone()),
    ])
}

/// The bootstrap stack's default name.
pub fn default_stack_name(prefix: &str) -> String {
    format!("{prefix}-bootstrap")
}

/// The CodeBuild project the template creates (`${StackPrefix}-deployer`).
pub fn project_name(prefix: &str) -> String {
    format!("{prefix}-deployer")
}

/// Reads a template file given instead of the built-in one, at most CloudFormation's
/// `TemplateBody` limit (the bootstrap stack has no bucket to upload a larger one to).
pub fn read_template(path: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))
        .map_err(usage)?;
    let mut text = String::new();
    file.take(TEMPLATE_BODY_LIMIT as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {} (UTF-8 text)", path.display()))
        .map_err(usage)?;
    if text.len() > TEMPLATE_BODY_LIMIT {
        return Err(usage(anyhow::anyhow!(
            "{}: over CloudFormation's TemplateBody limit of {TEMPLATE_BODY_LIMIT} bytes",
            path.display()
        )));
    }
    Ok(text)
}

/// How a bootstrap operation ended.
#[derive(Debug)]
pub struct Ended {
    /// The stack's final state (`None`: deleted).
    pub state: Option<StackState>,
    /// The build that ran, if one was seen.
    pub build: Option<BuildState>,
    /// The build log's tail, when the build did not succeed.
    pub log_tail: Vec<String>,
    /// The first resource failure of the stack operation.
    pub root_cause: Option<String>,
}

impl Ended {
    /// Whether the stack operation succeeded (created, updated or deleted).
    pub fn succeeded(&self) -> bool {
        self.state.as_ref().is_none_or(|state| {
            state.status.ends_with("_COMPLETE") && !state.status.contains("ROLLBACK")
        })
    }

    /// The error line of a failed operation: the stack's status and root cause, which for the
    /// Deployment resource is the deployer's own reason as the build reported it.
    pub fn failure(&self, stack: &str) -> String {
        let status = self
            .state
            .as_ref()
            .map_or("DELETE_COMPLETE", |state| state.status.as_str());
        let cause = self
            .root_cause
            .clone()
            .or_else(|| self.state.as_ref().and_then(|state| state.reason.clone()))
            .unwrap_or_else(|| "CloudFormation gave no reason".to_owned());
        let mut line = format!("bootstrap stack {stack}: {status}: {cause}");
        if let Some(build) = &self.build
            && build.status != "SUCCEEDED"
        {
            line.push_str(&format!(" (build {} {})", build.id, build.status));
        }
        line
    }
}

/// Runs the stack operation `operate` while following the build it starts; the builds that
/// exist before (`known`) are not followed.
async fn with_build<F>(
    project: &Project,
    known: BTreeSet<String>,
    operate: F,
) -> anyhow::Result<Ended>
where
    F: std::future::Future<Output = anyhow::Result<Watch>>,
{
    let (finish, finished) = watch::channel(false);
    let follower = tokio::spawn(codebuild::follow(project.clone(), known, finished));
    let watched = match operate.await {
        Ok(watched) => watched,
        Err(err) => {
            // The stack can no longer be watched; the build is not waited for either.
            follower.abort();
            return Err(err);
        }
    };
    let _ = finish.send(true);
    let build = match follower.await {
        Ok(Ok(build)) => build,
        Ok(Err(err)) => {
            eprintln!("warning: could not follow the build: {err:#}");
            None
        }
        Err(err) => {
            eprintln!("warning: the build follower stopped: {err}");
            None
        }
    };
    let mut log_tail = Vec::new();
    if let Some(build) = &build
        && build.status != "SUCCEEDED"
    {
        match project.log_tail(build).await {
            Ok(lines) => log_tail = lines,
            Err(err) => eprintln!("warning: {err:#}"),
        }
    }
    Ok(Ended {
        state: watched.state,
        build,
        log_tail,
        root_cause: watched.root_cause,
    })
}

/// Builds that exist now, so the one the operation starts can be told apart.
async fn known_builds(project: &Project) -> anyhow::Result<BTreeSet<String>> {
    Ok(project.recent_builds().await?.into_iter().collect())
}

/// What `deploy` did.
#[derive(Debug)]
pub enum Deployed {
    /// The stack already had this template and these parameters.
    Unchanged(StackState),
    /// It was created or updated (or that failed).
    Operated(Box<Ended>),
}

/// Creates or updates the bootstrap stack `name` and follows its build.
pub async fn deploy(
    cfn: &Cfn,
    project: &Project,
    name: &str,
    template: &str,
    parameters: &[(String, String)],
) -> anyhow::Result<Deployed> {
    let mut display = progress::for_stderr();
    let mut state = cfn.describe(name).await?;
    if let Some(current) = &state
        && !current.is_settled()
    {
        eprintln!("{name}: {} — waiting for it to end", current.status);
        state = cfn.wait_settled(name, display.as_mut()).await?;
    }
    if let Some(current) = &state
        && current.status == "ROLLBACK_COMPLETE"
    {
        // A failed create leaves a stack that can only be deleted.
        eprintln!("{name}: ROLLBACK_COMPLETE from an earlier failed create; deleting it first");
        let known = known_builds(project).await?;
        let ended = with_build(project, known, cfn.delete(name, 0, display.as_mut())).await?;
        if ended.state.is_some() {
            bail!("{}", ended.failure(name));
        }
        state = None;
    }
    let creates = state.is_none();
    // Also on a create: a project of the same name may remain from an earlier stack.
    let known = known_builds(project).await?;
    let plan = cfn
        .plan(
            name,
            &TemplateSource::Body(template.to_owned()),
            parameters,
            creates,
        )
        .await?;
    let change_set: ChangeSet = match plan {
        Plan::NoChanges => {
            let state = cfn
                .describe(name)
                .await?
                .with_context(|| format!("{name} disappeared"))?;
            return Ok(Deployed::Unchanged(state));
        }
        Plan::Changes(change_set) => change_set,
    };
    eprintln!(
        "{name}: {} {} resource change(s)",
        if creates { "creating:" } else { "updating:" },
        change_set.changes.len()
    );
    let ended = with_build(
        project,
        known,
        cfn.execute(name, &change_set, display.as_mut()),
    )
    .await?;
    Ok(Deployed::Operated(Box::new(ended)))
}

/// Deletes the bootstrap stack `name` (its `down` build removes the deployed stacks) and
/// follows the build; `None` when there was no such stack.
pub async fn delete(cfn: &Cfn, project: &Project, name: &str) -> anyhow::Result<Option<Ended>> {
    let Some(state) = cfn.describe(name).await? else {
        return Ok(None);
    };
    let mut display = progress::for_stderr();
    let known = known_builds(project).await?;
    let ended = if state.status == "DELETE_IN_PROGRESS" {
        with_build(project, known, async {
            let state = cfn.wait_settled(name, display.as_mut()).await?;
            Ok(Watch {
                state,
                root_cause: None,
                delete_failures: Vec::new(),
            })
        })
        .await?
    } else {
        with_build(project, known, cfn.delete(name, 0, display.as_mut())).await?
    };
    Ok(Some(ended))
}

/// The text of `deployer bootstrap status`: the stack and the project's newest build.
pub async fn status(cfn: &Cfn, project: &Project, name: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    match cfn.describe(name).await? {
        None => text.push_str(&format!("{name}: not deployed\n")),
        Some(state) => {
            text.push_str(&format!("{name}: {}\n", state.status));
            if let Some(reason) = &state.reason {
                text.push_str(&format!("  reason: {reason}\n"));
            }
            for (key, value) in &state.outputs {
                text.push_str(&format!("  {key} = {value}\n"));
            }
        }
    }
    let newest = match project.recent_builds().await?.first() {
        Some(id) => project.build(id).await?,
        None => None,
    };
    let Some(build) = newest else {
        text.push_str(&format!("{}: no builds\n", project.name()));
        return Ok(text);
    };
    let action = build
        .action
        .as_deref()
        .map(|action| format!(" (deployer {action})"))
        .unwrap_or_default();
    text.push_str(&format!(
        "latest build {}{action}: {}\n",
        build.id, build.status
    ));
    for phase in &build.phases {
        let status = phase.status.as_deref().unwrap_or("IN_PROGRESS");
        text.push_str(&format!("  {} {status}", phase.kind));
        if !phase.contexts.is_empty() {
            text.push_str(&format!(": {}", phase.contexts.join("; ")));
        }
        text.push('\n');
    }
    if let Some(link) = &build.deep_link {
        text.push_str(&format!("  log: {link}\n"));
    }
    if build.ended() && build.status != "SUCCEEDED" {
        text.push_str("  last lines of its log:\n");
        for line in project.log_tail(&build).await? {
            text.push_str(&format!("    {line}\n"));
        }
    }
    Ok(text)
}

/// Prints the log tail of a failed operation to stderr.
pub fn show_log_tail(ended: &Ended) {
    if ended.log_tail.is_empty() {
        return;
    }
    if let Some(build) = &ended.build {
        eprintln!("last lines of the log of build {}:", build.id);
    }
    for line in &ended.log_tail {
        eprintln!("  {line}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn form() -> Form {
        Form {
            source_repository_url: "https://github.com/o/r".into(),
            source_version: "main".into(),
            build_compute_type: "BUILD_GENERAL1_LARGE".into(),
            redeploy_token: "1".into(),
            ..Form::default()
        }
    }

    #[test]
    fn parameters_are_the_templates() {
        let template: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).unwrap();
        let declared: BTreeSet<String> = template["Parameters"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect();
        let given: BTreeSet<String> = parameters(&StackConfig::default(), &form())
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(given, declared);
    }

    #[test]
    fn exactly_one_source() {
        let both = Form {
            source_s3_location: "b/k.zip".into(),
            ..form()
        };
        let none = Form {
            source_repository_url: String::new(),
            ..form()
        };
        for form in [both, none] {
            let err = parameters(&StackConfig::default(), &form).unwrap_err();
            assert!(crate::outcome::is_usage(&err));
            assert!(format!("{err:#}").contains("--source-s3-location"));
        }
    }

    #[test]
    fn template_fits_the_body_limit() {
        assert!(TEMPLATE.len() <= TEMPLATE_BODY_LIMIT);
    }
}
