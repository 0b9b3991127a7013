//! `deployer diff`: what `up` would change, without changing anything.
//!
//! Per stack: a template diff against the deployed template (resources, parameters and outputs
//! added, removed or changed, by logical id), then the change set `up` would execute, created
//! and deleted again so CloudFormation's own view (including replacements) is shown. A stack
//! that is not deployed is shown as one that would be created. `--fail` exits 1 when anything
//! would change.

use clap::Args;
use serde_json::Value as Json;

use crate::cfn::{Plan, TemplateSource};
use crate::commands::up::{check_image, parameters, summary};
use crate::config::ConfigArgs;
use crate::deployment::Deployment;
use crate::outcome::Outcome;
use crate::output::Stdout;

/// Arguments of `deployer diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Settings.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The image `up` would deploy (default: the one deployed now).
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Exit 1 when there are changes.
    #[arg(long)]
    pub fail: bool,
}

/// Runs `deployer diff`.
pub async fn run(
    args: &DiffArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let deployment = Deployment::open(&args.config, env).await?;
    let mut any_change = false;
    let mut text = String::new();
    for stack in &deployment.stacks {
        let body = String::from_utf8(stack.template.to_json_bytes())?;
        let Some(state) = deployment.cfn.describe(&stack.name).await? else {
            any_change = true;
            text.push_str(&format!(
                "{}: not deployed; `up` would create it ({} resources)\n",
                stack.name,
                stack.template.resources().count()
            ));
            continue;
        };
        let deployed = deployment
            .cfn
            .deployed_template(&stack.name)
            .await?
            .unwrap_or_default();
        let lines = template_diff(&deployed, &body);
        if lines.is_empty() {
            text.push_str(&format!("{}: template unchanged\n", stack.name));
        } else {
            text.push_str(&format!("{}: template differences\n", stack.name));
            for line in &lines {
                text.push_str(&format!("  {line}\n"));
            }
        }
        if !state.is_settled() {
            text.push_str(&format!(
                "  ({} is {}; no change set)\n",
                stack.name, state.status
            ));
            any_change |= !lines.is_empty();
            continue;
        }
        let image = match &args.image {
            Some(image) => Some(check_image(image, &deployment.cfg.prefix, "")?),
            None => state
                .parameters
                .iter()
                .find(|(key, _)| key == "ImageUri")
                .map(|(_, value)| value.clone()),
        };
        let needs_image = stack
            .template
            .parameters()
            .any(|(id, _)| id.as_str() == "ImageUri");
        if needs_image && image.is_none() {
            text.push_str("  (no image deployed and no --image given; no change set)\n");
            any_change |= !lines.is_empty();
            continue;
        }
        let values = parameters(stack, &deployment, image.as_deref()).await?;
        if body.len() > stacks::model::validate::TEMPLATE_BODY_LIMIT {
            text.push_str(
                "  (template over the TemplateBody limit; change set shown by `up` only)\n",
            );
            any_change |= !lines.is_empty();
            continue;
        }
        match deployment
            .cfn
            .plan(&stack.name, &TemplateSource::Body(body), &values, false)
            .await?
        {
            Plan::NoChanges => text.push_str("  change set: no changes\n"),
            Plan::Changes(change_set) => {
                any_change = true;
                for line in summary(&stack.name, &change_set.changes).lines() {
                    text.push_str(&format!("  {line}\n"));
                }
                deployment.cfn.discard(&stack.name, &change_set.id).await?;
            }
        }
    }
    stdout.print(text)?;
    Ok(if args.fail && any_change {
        Outcome::CheckFailed
    } else {
        Outcome::Done
    })
}

/// Sections of a template compared by entry.
const SECTIONS: &[&str] = &["Parameters", "Conditions", "Resources", "Outputs"];

/// `+ Resources.Bucket`, `- Outputs.Url`, `~ Resources.Role` lines between two templates.
pub fn template_diff(deployed: &str, wanted: &str) -> Vec<String> {
    let parse = |text: &str| -> Json {
        serde_json::from_str(text)
            .or_else(|_| serde_yaml::from_str(text))
            .unwrap_or(Json::Null)
    };
    let (old, new) = (parse(deployed), parse(wanted));
    let mut lines = Vec::new();
    for section in SECTIONS {
        let empty = serde_json::Map::new();
        let before = old[*section].as_object().unwrap_or(&empty);
        let after = new[*section].as_object().unwrap_or(&empty);
        for (id, value) in after {
            match before.get(id) {
                None => lines.push(format!("+ {section}.{id}")),
                Some(previous) if previous != value => lines.push(format!("~ {section}.{id}")),
                Some(_) => {}
            }
        }
        for id in before.keys().filter(|id| !after.contains_key(*id)) {
            lines.push(format!("- {section}.{id}"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_added_removed_changed() {
        let old = r#"{"Resources": {"A": {"Type": "X"}, "B": {"Type": "Y"}}, "Outputs": {"O": {"Value": 1}}}"#;
        let new = r#"{"Resources": {"A": {"Type": "X2"}, "C": {"Type": "Z"}}, "Outputs": {"O": {"Value": 1}}}"#;
        assert_eq!(
            template_diff(old, new),
            ["~ Resources.A", "+ Resources.C", "- Resources.B"]
        );
    }

    #[test]
    fn yaml_deployed_template_is_read() {
        assert!(
            template_diff(
                "Resources:\n  A: {Type: X}\n",
                r#"{"Resources": {"A": {"Type": "X"}}}"#
            )
            .is_empty()
        );
    }
}
