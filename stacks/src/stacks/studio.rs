//! The optional SageMaker Studio stack: a domain in the VPC's private subnets with IAM auth,
//! its execution role, one user profile, one shared space, and a JupyterLab lifecycle
//! configuration that clones the configured git repository on start.
//!
//! Only native resource types are used (no custom-resource Lambdas). The repository URL is
//! embedded in a shell script, so it must pass [`StackConfig::validate`] (https, no shell
//! metacharacters) before it gets here.

use crate::config::StackConfig;
use crate::model::{Expr, Output, Template, Value, s};
use crate::nag::{NagSuppress, NagSuppression};
use crate::resources::ec2::{Egress, SecurityGroup, SecurityGroupAttr, SecurityGroupIngress};
use crate::resources::iam::{PolicyDocument, Role, RoleAttr};
use crate::resources::sagemaker::{
    DefaultSpaceSettings, Domain, DomainAttr, JupyterLabAppSettings, OwnershipSettings,
    ResourceSpec, Space, SpaceSettings, SpaceSharingSettings, StudioLifecycleConfig,
    StudioLifecycleConfigAttr, UserProfile, UserSettings,
};
use crate::stacks::network::NetworkExports;
use crate::stacks::{StackKind, tags};

/// Name of the user profile.
pub const USER_PROFILE_NAME: &str = "studio-user";

/// Name of the shared space.
pub const SPACE_NAME: &str = "shared-space";

/// The lifecycle script: clone the repository into the home directory once.
pub fn clone_script(repo: &str) -> String {
    format!(
        "#!/bin/bash\n\
         # Clones {repo} into the home directory on the first start of JupyterLab.\n\
         set -eu\n\
         repo_url='{repo}'\n\
         target=\"$HOME/$(basename \"$repo_url\" .git)\"\n\
         if [ ! -d \"$target\" ]; then\n\
         \x20 git clone --depth 1 \"$repo_url\" \"$target\" || echo \"clone of $repo_url failed\" >&2\n\
         fi\n"
    )
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
            ip_protocol: s("tcp"),
            description: Some(s("between Studio apps")),
            from_port: Some(8192.into()),
            to_port: Some(65535.into()),
            source_prefix_list_id: None,
            source_security_group_id: Some(
                security_group.get_att(SecurityGroupAttr::GroupId).into(),
            ),
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

    let lifecycle = t.add(
        "CloneRepoLifecycleConfig",
        StudioLifecycleConfig {
            studio_lifecycle_config_app_type: s("JupyterLab"),
            studio_lifecycle_config_content: Expr::base64(Expr::str(clone_script(
                &cfg.studio_git_repo,
            )))
            .into(),
            studio_lifecycle_config_name: s(format!("{prefix}-clone-repo")),
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
            tags: stack_tags(),
        },
    );
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
