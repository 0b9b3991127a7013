//! What every AWS command starts from: the resolved configuration, the AWS configuration (region
//! from the setting, else aws-config's chain), the synthesized stacks in deploy order, and the
//! CloudFormation client.

use aws_config::SdkConfig;
use stacks::{StackConfig, SynthStack};

use crate::aws;
use crate::cfn::Cfn;
use crate::config::{self, ConfigArgs};
use crate::outcome::usage;

/// One deployment: settings, AWS access and stacks.
pub struct Deployment {
    /// The validated settings (with the region AWS access uses).
    pub cfg: StackConfig,
    /// The AWS configuration.
    pub sdk: SdkConfig,
    /// The stacks, in deploy order.
    pub stacks: Vec<SynthStack>,
    /// CloudFormation (and S3 for template upload).
    pub cfn: Cfn,
}

impl Deployment {
    /// Resolves settings, loads the AWS configuration and synthesizes the stacks.
    pub async fn open(
        args: &ConfigArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Deployment> {
        let mut cfg = config::resolve(args, env).map_err(usage)?;
        let region_given = config::is_given(args, env, "region").map_err(usage)?;
        let sdk = aws::load(region_given.then_some(cfg.region.as_str())).await?;
        let region = aws::region(&sdk);
        if !region_given {
            stacks::config::check_region(&region).map_err(|err| {
                usage(anyhow::Error::new(err).context("region of the AWS profile"))
            })?;
            cfg.region = region;
        }
        let stacks = stacks::synth_all(&cfg)?;
        let cfn = Cfn::new(&sdk);
        Ok(Deployment {
            cfg,
            sdk,
            stacks,
            cfn,
        })
    }

    /// The stack of `kind` (`toolkit`, `network`, `app`, `studio`), if this configuration has it.
    pub fn stack(&self, kind: &str) -> Option<&SynthStack> {
        self.stacks
            .iter()
            .find(|stack| stack.kind.short_name() == kind)
    }
}
