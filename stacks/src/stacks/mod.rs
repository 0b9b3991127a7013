//! Our stacks and [`synth_all`], which builds and validates every stack a config asks for.
//!
//! Stacks reference each other only through exports (`Fn::ImportValue`) whose names come from
//! typed structs ([`network::NetworkExports`]), and [`synth_all`] returns them in deploy order
//! with their dependencies, so a stack is always deployed after the stacks it imports from.

pub mod app;
pub mod checkov;
pub mod kms;
pub mod network;
pub mod studio;
pub mod toolkit;

use crate::config::{ConfigError, StackConfig};
use crate::model::validate::TEMPLATE_BODY_LIMIT;
use crate::model::{Expr, Template, ValidateErrors};
use crate::resources::iam::{Effect, Principal, Statement};

/// Which of our stacks a template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// What the deployer needs first: the image repository, the templates bucket.
    Toolkit,
    /// VPC, subnets, NAT, flow logs.
    Network,
    /// Fargate service, ALB, CloudFront, Cognito, data bucket, secrets.
    App,
    /// Optional SageMaker Studio domain.
    Studio,
}

impl StackKind {
    /// Short name, used in stack names (`<prefix>-<short>`) and file names.
    pub fn short_name(self) -> &'static str {
        match self {
            StackKind::Toolkit => "toolkit",
            StackKind::Network => "network",
            StackKind::App => "app",
            StackKind::Studio => "studio",
        }
    }
}

/// One synthesized, validated stack.
#[derive(Debug, Clone)]
pub struct SynthStack {
    /// CloudFormation stack name, e.g. `llm-eval-network`.
    pub name: String,
    /// Which stack this is.
    pub kind: StackKind,
    /// The template.
    pub template: Template,
    /// Names of stacks that must be deployed first.
    pub depends_on: Vec<String>,
}

/// Why synthesis failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SynthError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A template failed validation.
    #[error("stack {stack} is invalid:\n{errors}")]
    Validate {
        /// Stack name.
        stack: String,
        /// Every problem found.
        errors: ValidateErrors,
    },
}

/// The stack name of `kind` under `cfg`.
pub fn stack_name(cfg: &StackConfig, kind: StackKind) -> String {
    format!("{}-{}", cfg.prefix, kind.short_name())
}

fn finish(
    cfg: &StackConfig,
    kind: StackKind,
    template: Template,
    depends_on: Vec<String>,
) -> Result<SynthStack, SynthError> {
    let name = stack_name(cfg, kind);
    template
        .validate(&name)
        .map_err(|errors| SynthError::Validate {
            stack: name.clone(),
            errors,
        })?;
    Ok(SynthStack {
        name,
        kind,
        template,
        depends_on,
    })
}

/// Builds and validates every stack `cfg` enables, in deploy order: the toolkit (when there
/// is an image to push or a template too large to pass inline), the network, then the app and
/// studio stacks, which only depend on the network (and the app on the toolkit's repository).
pub fn synth_all(cfg: &StackConfig) -> Result<Vec<SynthStack>, SynthError> {
    cfg.validate()?;
    let mut stacks = Vec::with_capacity(4);
    let (network_template, exports) = network::build(cfg);
    let network_name = stack_name(cfg, StackKind::Network);
    let toolkit_name = stack_name(cfg, StackKind::Toolkit);
    stacks.push(finish(
        cfg,
        StackKind::Network,
        network_template,
        Vec::new(),
    )?);
    if cfg.deploy_prompt_app {
        let template = app::build(cfg, &exports);
        stacks.push(finish(
            cfg,
            StackKind::App,
            template,
            vec![network_name.clone(), toolkit_name],
        )?);
    }
    if cfg.deploy_sagemaker_domain {
        let template = studio::build(cfg, &exports);
        stacks.push(finish(
            cfg,
            StackKind::Studio,
            template,
            vec![network_name],
        )?);
    }
    let parts = toolkit::ToolkitParts {
        repository: cfg.deploy_prompt_app,
        templates_bucket: stacks
            .iter()
            .any(|stack| stack.template.to_json_bytes().len() > TEMPLATE_BODY_LIMIT),
    };
    if parts.repository || parts.templates_bucket {
        let toolkit = finish(
            cfg,
            StackKind::Toolkit,
            toolkit::build(cfg, parts),
            Vec::new(),
        )?;
        stacks.insert(0, toolkit);
    }
    Ok(stacks)
}

/// Name of the parameter `deployer pause` sets to `true` (network and app stacks).
pub const PAUSED_PARAMETER: &str = "Paused";

/// Adds the [`PAUSED_PARAMETER`] (`false` by default, so `up` deploys a running stack) and the
/// condition `Running` (not paused) that gates what costs money by the hour.
pub(crate) fn add_paused_parameter(t: &mut crate::Template) -> crate::model::CondHandle {
    let mut paused = crate::model::Parameter::string(
        "true while `deployer pause` holds the stack: what costs by the hour (NAT gateways and their addresses, app tasks) is removed, data and users stay",
    );
    paused.default = Some("false".into());
    paused.allowed_values = vec!["false".into(), "true".into()];
    let paused = t.add_parameter(PAUSED_PARAMETER, paused);
    t.add_condition("Running", Expr::equals(paused.r#ref(), Expr::str("false")))
}

/// Denies every S3 request that does not use TLS.
pub(crate) fn tls_only(bucket_arn: Expr) -> Statement {
    Statement {
        sid: Some("DenyInsecureTransport".into()),
        effect: Effect::Deny,
        principal: Some(Principal::All),
        action: vec!["s3:*".into()],
        resource: vec![
            bucket_arn.clone().into(),
            Expr::join("", vec![bucket_arn, Expr::str("/*")]).into(),
        ],
        condition: Some(serde_json::json!({"Bool": {"aws:SecureTransport": "false"}})),
    }
}

/// Standard tags every taggable resource gets.
pub(crate) fn tags(cfg: &StackConfig, kind: StackKind) -> Vec<crate::resources::Tag> {
    vec![
        crate::resources::Tag::new("project", cfg.prefix.as_str()),
        crate::resources::Tag::new("stack", kind.short_name()),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(cfg: StackConfig, expected: &[&str]) {
        let stacks = synth_all(&cfg).unwrap();
        let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn default_has_all_three() {
        check(
            StackConfig::default(),
            &[
                "llm-eval-toolkit",
                "llm-eval-network",
                "llm-eval-app",
                "llm-eval-studio",
            ],
        )
    }
    #[test]
    fn no_studio() {
        check(
            StackConfig {
                deploy_sagemaker_domain: false,
                ..StackConfig::default()
            },
            &["llm-eval-toolkit", "llm-eval-network", "llm-eval-app"],
        )
    }
    #[test]
    fn network_only() {
        check(
            StackConfig {
                deploy_sagemaker_domain: false,
                deploy_prompt_app: false,
                ..StackConfig::default()
            },
            &["llm-eval-network"],
        )
    }
    #[test]
    fn every_combination_validates() {
        for cfg in StackConfig::default().toggle_combinations() {
            synth_all(&cfg).unwrap_or_else(|err| panic!("{}: {err}", cfg.toggle_label()));
        }
    }
    #[test]
    fn bad_config_rejected() {
        let cfg = StackConfig {
            prefix: "Bad".into(),
            ..StackConfig::default()
        };
        assert!(matches!(
            synth_all(&cfg),
            Err(SynthError::Config(ConfigError::InvalidPrefix(_)))
        ));
    }
}
