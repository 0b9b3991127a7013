//! `deployer synth`: writes one template per stack plus `manifest.json`, or prints templates.
//!
//! Needs no network and no AWS credentials. Output is deterministic: the same configuration
//! gives byte-identical files. The manifest lists the stacks in deploy order with their
//! template file, dependencies and parameters (and whether the deployer must supply them).

use std::path::Path;

use anyhow::Context;
use serde_json::{Value as Json, json};
use stacks::{StackConfig, SynthStack};

use crate::cli::{Format, SynthArgs};
use crate::commands::nag;
use crate::config;
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// File extension of a template.
fn extension(format: Format) -> &'static str {
    match format {
        Format::Json => "template.json",
        Format::Yaml => "template.yaml",
    }
}

/// Template bytes in `format`.
pub fn render(stack: &SynthStack, format: Format) -> anyhow::Result<Vec<u8>> {
    match format {
        Format::Json => Ok(stack.template.to_json_bytes()),
        Format::Yaml => stack
            .template
            .to_yaml_bytes()
            .with_context(|| format!("rendering {} as YAML", stack.name)),
    }
}

/// `--stack` names no stack of this configuration (a usage error).
#[derive(Debug)]
pub struct StackNotFound(String);

impl std::fmt::Display for StackNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StackNotFound {}

/// Keeps the stack named `wanted` (full name or short kind name); a stack the toggles turned
/// off is named with its toggle.
pub fn select(
    cfg: &StackConfig,
    stacks: Vec<SynthStack>,
    wanted: Option<&str>,
) -> Result<Vec<SynthStack>, StackNotFound> {
    let Some(wanted) = wanted else {
        return Ok(stacks);
    };
    let names: Vec<String> = stacks.iter().map(|stack| stack.name.clone()).collect();
    let kept: Vec<SynthStack> = stacks
        .into_iter()
        .filter(|stack| stack.name == wanted || stack.kind.short_name() == wanted)
        .collect();
    if !kept.is_empty() {
        return Ok(kept);
    }
    let toggles = [
        ("app", "DEPLOY_PROMPT_APP", cfg.deploy_prompt_app),
        (
            "studio",
            "DEPLOY_SAGEMAKER_DOMAIN",
            cfg.deploy_sagemaker_domain,
        ),
    ];
    for (kind, variable, on) in toggles {
        if !on && (wanted == kind || wanted == format!("{}-{kind}", cfg.prefix)) {
            return Err(StackNotFound(format!(
                "stack `{wanted}` is turned off ({variable} is no); stacks: {}",
                names.join(", ")
            )));
        }
    }
    Err(StackNotFound(format!(
        "no stack named `{wanted}` in this configuration; stacks: {}",
        names.join(", ")
    )))
}

/// The manifest: stacks in deploy order, their files, dependencies and parameters.
pub fn manifest(cfg: &StackConfig, stacks: &[SynthStack], format: Format) -> Json {
    let entries: Vec<Json> = stacks
        .iter()
        .map(|stack| {
            let parameters: Vec<Json> = stack
                .template
                .parameters()
                .map(|(id, parameter)| {
                    json!({
                        "name": id.as_str(),
                        "type": parameter.kind.name(),
                        "description": parameter.description,
                        "default": parameter.default,
                        "supplied_by_deployer": parameter.default.is_none(),
                    })
                })
                .collect();
            json!({
                "name": stack.name,
                "kind": stack.kind.short_name(),
                "template": format!("{}.{}", stack.name, extension(format)),
                "depends_on": stack.depends_on,
                "parameters": parameters,
            })
        })
        .collect();
    json!({
        "version": 1,
        "region": cfg.region,
        "toggles": {
            "DEPLOY_SAGEMAKER_DOMAIN": cfg.deploy_sagemaker_domain,
            "DEPLOY_PROMPT_APP": cfg.deploy_prompt_app,
            "CDK_NAG": cfg.cdk_nag,
            "DEPLOY_CLOUDFRONT_ACCESS_LOGS": cfg.cloudfront_access_logs,
        },
        "order": stacks.iter().map(|stack| stack.name.as_str()).collect::<Vec<_>>(),
        "stacks": entries,
    })
}

/// Writes templates and manifest into `dir`; returns the paths written.
pub fn write_dir(
    dir: &Path,
    cfg: &StackConfig,
    stacks: &[SynthStack],
    format: Format,
) -> anyhow::Result<Vec<String>> {
    if dir.exists() && !dir.is_dir() {
        // A usage error (exit 2) like every other wrong flag value.
        return Err(usage(anyhow::anyhow!(
            "--out {}: exists and is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::with_capacity(stacks.len() + 1);
    for stack in stacks {
        let path = dir.join(format!("{}.{}", stack.name, extension(format)));
        std::fs::write(&path, render(stack, format)?)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
    }
    let path = dir.join("manifest.json");
    let mut text = format!("{:#}", manifest(cfg, stacks, format));
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    written.push(path.display().to_string());
    Ok(written)
}

/// Stdout form: one template as is; several as a JSON object keyed by stack name, or as a
/// multi-document YAML stream.
pub fn stdout_bytes(stacks: &[SynthStack], format: Format) -> anyhow::Result<Vec<u8>> {
    if let [single] = stacks {
        return render(single, format);
    }
    match format {
        Format::Json => {
            let all: serde_json::Map<String, Json> = stacks
                .iter()
                .map(|stack| (stack.name.clone(), stack.template.to_json_value()))
                .collect();
            let mut text = format!("{:#}", Json::Object(all));
            text.push('\n');
            Ok(text.into_bytes())
        }
        Format::Yaml => {
            let mut out = Vec::new();
            for stack in stacks {
                out.extend_from_slice(format!("--- # {}\n", stack.name).as_bytes());
                out.extend(render(stack, format)?);
            }
            Ok(out)
        }
    }
}

/// Runs `deployer synth`; with `CDK_NAG=true`, then checks the stacks (`nag::after_synth`).
pub fn run(
    args: &SynthArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let cfg = config::resolve(&args.config, env).map_err(usage)?;
    let stacks = stacks::synth_all(&cfg).context("synthesizing stacks")?;
    let stacks = select(&cfg, stacks, args.stack.as_deref()).map_err(usage)?;
    match &args.out {
        Some(dir) => {
            for path in write_dir(dir, &cfg, &stacks, args.format)? {
                eprintln!("wrote {path}");
            }
        }
        None => stdout.print(stdout_bytes(&stacks, args.format)?)?,
    }
    if cfg.cdk_nag {
        return nag::after_synth(&cfg);
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_select(wanted: Option<&str>, expected: Result<&[&str], &str>) {
        check_select_in(StackConfig::default(), wanted, expected)
    }

    fn check_select_in(cfg: StackConfig, wanted: Option<&str>, expected: Result<&[&str], &str>) {
        let stacks = stacks::synth_all(&cfg).unwrap();
        let actual = select(&cfg, stacks, wanted)
            .map(|kept| kept.into_iter().map(|s| s.name).collect::<Vec<_>>())
            .map_err(|err| err.to_string());
        match expected {
            Ok(names) => assert_eq!(actual.unwrap(), names),
            Err(message) => assert_eq!(actual.unwrap_err(), message),
        }
    }

    #[test]
    fn select_all() {
        check_select(
            None,
            Ok(&[
                "llm-eval-toolkit",
                "llm-eval-network",
                "llm-eval-app",
                "llm-eval-studio",
            ]),
        )
    }
    #[test]
    fn select_short() {
        check_select(Some("app"), Ok(&["llm-eval-app"]))
    }
    #[test]
    fn select_full() {
        check_select(Some("llm-eval-studio"), Ok(&["llm-eval-studio"]))
    }
    #[test]
    fn select_unknown() {
        check_select(
            Some("db"),
            Err(
                "no stack named `db` in this configuration; stacks: llm-eval-toolkit, llm-eval-network, llm-eval-app, llm-eval-studio",
            ),
        )
    }

    #[test]
    fn select_turned_off_short() {
        check_select_in(
            StackConfig {
                deploy_sagemaker_domain: false,
                ..StackConfig::default()
            },
            Some("studio"),
            Err(
                "stack `studio` is turned off (DEPLOY_SAGEMAKER_DOMAIN is no); stacks: llm-eval-toolkit, llm-eval-network, llm-eval-app",
            ),
        )
    }
    #[test]
    fn select_turned_off_full() {
        check_select_in(
            StackConfig {
                deploy_prompt_app: false,
                ..StackConfig::default()
            },
            Some("llm-eval-app"),
            Err(
                "stack `llm-eval-app` is turned off (DEPLOY_PROMPT_APP is no); stacks: llm-eval-network, llm-eval-studio",
            ),
        )
    }

    #[test]
    fn manifest_lists_order_and_deployer_parameters() {
        let cfg = StackConfig::default();
        let stacks = stacks::synth_all(&cfg).unwrap();
        let m = manifest(&cfg, &stacks, Format::Yaml);
        assert_eq!(
            m["order"],
            json!([
                "llm-eval-toolkit",
                "llm-eval-network",
                "llm-eval-app",
                "llm-eval-studio"
            ])
        );
        assert_eq!(m["stacks"][2]["template"], "llm-eval-app.template.yaml");
        assert_eq!(
            m["stacks"][2]["depends_on"],
            json!(["llm-eval-network", "llm-eval-toolkit"])
        );
        let supplied: Vec<&str> = m["stacks"][2]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["supplied_by_deployer"] == true)
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(supplied, ["ImageUri", "CloudFrontPrefixListId"]);
    }
}
