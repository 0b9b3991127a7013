//! The optional SageMaker Studio stack: a domain in the VPC's private subnets with IAM auth,
//! its execution role, one user profile, one shared space, and a JupyterLab lifecycle
//! configuration that clones the configured git repository on start.
//!
//! Only native resource types are used (no custom-resource Lambdas). The repository URL is
//! embedded in a shell script, so it must pass [`StackConfig::validate`] (https, no shell
//! metacharacters) before it gets here.
//!
//! Deploy-time invariants:
//! - the lifecycle script returns at once and clones in the background, because SageMaker fails
//!   an app start whose lifecycle script runs longer than 5 minutes;
//! - the lifecycle configuration's name ends with a hash of its script. Its content and name are
//!   create-only, so a new repository URL replaces the resource, and CloudFormation refuses to
//!   replace a resource whose custom name stays the same.

use crate::config::StackConfig;
use crate::model::{Expr, Output, Template, Value, s};
use crate::nag::{NagSuppress, NagSuppression};
use crate::resources::ec2::{
    Egress, Ingress, SecurityGroup, SecurityGroupAttr, SecurityGroupIngress,
};
use crate::resources::iam::{PolicyDocument, Role, RoleAttr};
use crate::resources::sagemaker::{
    DefaultSpaceSettings, Domain, DomainAttr, JupyterLabAppSettings, OwnershipSettings,
    ResourceSpec, Space, SpaceSettings, SpaceSharingSettings, StudioLifecycleConfig,
    StudioLifecycleConfigAttr, UserProfile, UserSettings,
};
use crate::stacks::network::NetworkExports;
use crate::stacks::{StackKind, checkov, tags};

/// Name of the user profile.
pub const USER_PROFILE_NAME: &str = "studio-user";

/// Name of the shared space.
pub const SPACE_NAME: &str = "shared-space";

/// The lifecycle script: clone the repository into the home directory once. The clone runs in
/// the background (`nohup ... &`) so the script ends well within SageMaker's 5-minute limit for
/// lifecycle scripts, however large the repository; its output goes to `~/.clone-repo.log`.
pub fn clone_script(repo: &str) -> String {
    format!(
        "#!/bin/bash\n\
         # Clones {repo} into the home directory on the first start of JupyterLab.\n\
         # In the background: a lifecycle script must finish within 5 minutes.\n\
         set -eu\n\
         repo_url='{repo}'\n\
         target=\"$HOME/$(basename \"$repo_url\" .git)\"\n\
         if [ ! -d \"$target\" ]; then\n\
         \x20 nohup git clone --depth 1 \"$repo_url\" \"$target\" >\"$HOME/.clone-repo.log\" 2>&1 &\n\
         fi\n"
    )
}

/// Name of the lifecycle configuration: `<prefix>-clone-repo-<hash>`, where `<hash>` is the first
/// 8 hex digits of the 64-bit FNV-1a hash of `script`. Same script, same name (no drift); a
/// changed script gets a new name, so CloudFormation can replace the create-only resource.
pub fn lifecycle_config_name(prefix: &str, script: &str) -> String {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = script.bytes().fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    format!("{prefix}-clone-repo-{:08x}", hash >> 32)
}

/// Builds the studio template.
pub fn build(cfg: &StackConfig, network: &NetworkExports) -> Template {
    let prefix = cfg.prefix.as_str();
    let stack_tags = || tags(cfg, StackKind::Studio);
    let mut t = Template::new(format!(
        "{prefix} studio: SageMaker Studio domain (IAM auth, VPC only), user profile, shared space, git clone lifecycle configuration"
    ));
    let vpc_id: Value<String> = NetworkExports::import(&network.vpc_id).into();

    let security_group = t.add(
        "StudioSecurityGroup",
        SecurityGroup {
            group_description: s("SageMaker Studio apps: traffic between apps, HTTPS out"),
            vpc_id: Some(vpc_id.clone()),
            security_group_ingress: Vec::new(),
            security_group_egress: vec![
                Egress {
                    ip_protocol: s("tcp"),
                    description: Some(s("HTTPS to AWS APIs and the git host")),
                    from_port: Some(443.into()),
                    to_port: Some(443.into()),
                    cidr_ip: Some(s("0.0.0.0/0")),
                    destination_security_group_id: None,
                },
                Egress {
                    ip_protocol: s("tcp"),
                    description: Some(s("NFS to the domain's EFS home directories")),
                    from_port: Some(2049.into()),
                    to_port: Some(2049.into()),
                    cidr_ip: Some(NetworkExports::import(&network.vpc_cidr).into()),
                    destination_security_group_id: None,
                },
                Egress {
                    ip_protocol: s("tcp"),
                    description: Some(s("between Studio apps")),
                    from_port: Some(8192.into()),
                    to_port: Some(65535.into()),
                    cidr_ip: Some(NetworkExports::import(&network.vpc_cidr).into()),
                    destination_security_group_id: None,
                },
            ],
            tags: stack_tags(),
        },
    );
    // Studio apps talk to each other on high ports (required for VpcOnly domains).
    t.add(
        "StudioSelfIngress",
        SecurityGroupIngress {
            group_id: Some(security_group.get_att(SecurityGroupAttr::GroupId).into()),
            rule: Ingress {
                ip_protocol: s("tcp"),
                description: Some(s("between Studio apps")),
                from_port: Some(8192.into()),
                to_port: Some(65535.into()),
                source_prefix_list_id: None,
                source_security_group_id: Some(
                    security_group.get_att(SecurityGroupAttr::GroupId).into(),
                ),
                cidr_ip: None,
            },
        },
    );

    let role = t.add(
        "StudioExecutionRole",
        Role {
            assume_role_policy_document: PolicyDocument::assume_by_service(
                "sagemaker.amazonaws.com",
            ),
            description: Some(s(
                "execution role of the SageMaker Studio domain's apps and spaces",
            )),
            // Studio users run arbitrary notebooks; the AWS managed policy is the documented
            // baseline for a Studio execution role.
            managed_policy_arns: vec![
                Expr::sub("arn:${AWS::Partition}:iam::aws:policy/AmazonSageMakerFullAccess").into(),
            ],
            policies: Vec::new(),
            tags: stack_tags(),
        },
    );
    t.nag_suppress(
        &role,
        &[NagSuppression::new(
            "AwsSolutions-IAM4",
            "Studio users run arbitrary workshop notebooks (training jobs, endpoints, experiments); AmazonSageMakerFullAccess is the documented baseline for a Studio execution role",
        )
        .applies_to(["Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSageMakerFullAccess"])],
    );

    let script = clone_script(&cfg.studio_git_repo);
    let lifecycle = t.add(
        "CloneRepoLifecycleConfig",
        StudioLifecycleConfig {
            studio_lifecycle_config_app_type: s("JupyterLab"),
            studio_lifecycle_config_name: s(lifecycle_config_name(prefix, &script)),
            studio_lifecycle_config_content: Expr::base64(Expr::str(script)).into(),
            tags: stack_tags(),
        },
    );
    let lifecycle_arn: Value<String> = lifecycle
        .get_att(StudioLifecycleConfigAttr::StudioLifecycleConfigArn)
        .into();
    let jupyter = || JupyterLabAppSettings {
        default_resource_spec: Some(ResourceSpec {
            instance_type: None,
            lifecycle_config_arn: Some(lifecycle_arn.clone()),
        }),
        lifecycle_config_arns: vec![lifecycle_arn.clone()],
    };
    let role_arn: Value<String> = role.get_att(RoleAttr::Arn).into();
    let sg_id: Value<String> = security_group.get_att(SecurityGroupAttr::GroupId).into();

    let domain = t.add(
        "Domain",
        Domain {
            auth_mode: s("IAM"),
            default_user_settings: UserSettings {
                execution_role: role_arn.clone(),
                security_groups: vec![sg_id.clone()],
                jupyter_lab_app_settings: Some(jupyter()),
                studio_web_portal: Some(s("ENABLED")),
                default_landing_uri: Some(s("studio::")),
            },
            domain_name: s(format!("{prefix}-studio")),
            default_space_settings: Some(DefaultSpaceSettings {
                execution_role: role_arn,
                security_groups: vec![sg_id],
                jupyter_lab_app_settings: Some(jupyter()),
            }),
            app_network_access_type: Some(s("VpcOnly")),
            vpc_id: Some(vpc_id),
            subnet_ids: network
                .private_subnets
                .iter()
                .map(|name| NetworkExports::import(name).into())
                .collect(),
            kms_key_id: crate::stacks::kms::key_arn(cfg, network),
            tags: stack_tags(),
        },
    );
    checkov::skip_without_cmk(&mut t, cfg, &domain, "CKV_AWS_187");
    let profile = t.add(
        "UserProfile",
        UserProfile {
            domain_id: domain.get_att(DomainAttr::DomainId).into(),
            user_profile_name: s(USER_PROFILE_NAME),
            tags: stack_tags(),
        },
    );
    let space = t.add(
        "SharedSpace",
        Space {
            domain_id: domain.get_att(DomainAttr::DomainId).into(),
            space_name: s(SPACE_NAME),
            space_display_name: Some(s("Shared space")),
            ownership_settings: Some(OwnershipSettings {
                owner_user_profile_name: s(USER_PROFILE_NAME),
            }),
            space_sharing_settings: Some(SpaceSharingSettings {
                sharing_type: s("Shared"),
            }),
            space_settings: Some(SpaceSettings {
                app_type: Some(s("JupyterLab")),
                jupyter_lab_app_settings: None,
            }),
            tags: stack_tags(),
        },
    );
    // The owner is named by a literal, so the dependency on the profile must be explicit.
    t.depends_on(&space, &profile);

    t.add_output(
        "DomainId",
        Output {
            description: "SageMaker Studio domain id".into(),
            value: domain.get_att(DomainAttr::DomainId),
            export: None,
            condition: None,
        },
    );
    t.add_output(
        "DomainUrl",
        Output {
            description: "SageMaker Studio URL".into(),
            value: domain.get_att(DomainAttr::Url),
            export: None,
            condition: None,
        },
    );
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(prefix: &str, script: &str, expected: &str) {
        assert_eq!(lifecycle_config_name(prefix, script), expected);
    }

    // FNV-1a 64 reference values: "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c.
    #[test]
    fn name_of_empty_script() {
        check("llm-eval", "", "llm-eval-clone-repo-cbf29ce4")
    }
    #[test]
    fn name_of_one_byte_script() {
        check("p", "a", "p-clone-repo-af63dc4c")
    }

    #[test]
    fn a_new_repository_gives_a_new_name() {
        let one = clone_script("https://example.com/a.git");
        let two = clone_script("https://example.com/b.git");
        assert_ne!(
            lifecycle_config_name("x", &one),
            lifecycle_config_name("x", &two)
        );
    }

    #[test]
    fn longest_prefix_fits_sagemaker_name_rules() {
        // StudioLifecycleConfigName: at most 63 characters of [a-zA-Z0-9-], no leading dash.
        let name = lifecycle_config_name(&"a".repeat(20), &clone_script("https://x.org/r.git"));
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        );
    }

    #[test]
    fn clone_runs_in_the_background() {
        let script = clone_script("https://example.com/team/notebooks.git");
        let clone_line = script
            .lines()
            .find(|line| line.contains("git clone"))
            .unwrap();
        assert!(clone_line.trim_start().starts_with("nohup "), "{script}");
        assert!(clone_line.trim_end().ends_with('&'), "{script}");
    }

    #[test]
    fn script_is_valid_bash() {
        let script = clone_script("https://example.com/team/notebooks.git");
        let output = std::process::Command::new("bash")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
