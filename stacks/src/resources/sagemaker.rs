//! `AWS::SageMaker::*`: Studio domain, user profile, space, lifecycle configuration.

use serde::Serialize;

use crate::model::Value;
use crate::resources::{Tag, resource};

/// Instance and lifecycle configuration of an app.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResourceSpec {
    /// e.g. `ml.t3.medium`.
    #[serde(rename = "InstanceType", skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<Value<String>>,
    /// Lifecycle configuration run when the app starts.
    #[serde(rename = "LifecycleConfigArn", skip_serializing_if = "Option::is_none")]
    pub lifecycle_config_arn: Option<Value<String>>,
}

/// JupyterLab settings of users in a domain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JupyterLabAppSettings {
    /// Default instance and lifecycle configuration.
    #[serde(
        rename = "DefaultResourceSpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_resource_spec: Option<ResourceSpec>,
    /// Lifecycle configurations users may pick.
    #[serde(rename = "LifecycleConfigArns", skip_serializing_if = "Vec::is_empty")]
    pub lifecycle_config_arns: Vec<Value<String>>,
}

/// Settings of the users of a domain.
#[derive(Debug, Clone, Serialize)]
pub struct UserSettings {
    /// Execution role of the apps.
    #[serde(rename = "ExecutionRole")]
    pub execution_role: Value<String>,
    /// Security groups of the apps' network interfaces.
    #[serde(rename = "SecurityGroups", skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<Value<String>>,
    /// JupyterLab settings.
    #[serde(
        rename = "JupyterLabAppSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub jupyter_lab_app_settings: Option<JupyterLabAppSettings>,
    /// `ENABLED` or `DISABLED`.
    #[serde(rename = "StudioWebPortal", skip_serializing_if = "Option::is_none")]
    pub studio_web_portal: Option<Value<String>>,
    /// e.g. `studio::`.
    #[serde(rename = "DefaultLandingUri", skip_serializing_if = "Option::is_none")]
    pub default_landing_uri: Option<Value<String>>,
}

/// Settings of spaces in a domain.
#[derive(Debug, Clone, Serialize)]
pub struct DefaultSpaceSettings {
    /// Execution role of space apps.
    #[serde(rename = "ExecutionRole")]
    pub execution_role: Value<String>,
    /// Security groups.
    #[serde(rename = "SecurityGroups", skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<Value<String>>,
    /// JupyterLab settings.
    #[serde(
        rename = "JupyterLabAppSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub jupyter_lab_app_settings: Option<JupyterLabAppSettings>,
}

/// `AWS::SageMaker::Domain`.
#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    /// `IAM` or `SSO`.
    #[serde(rename = "AuthMode")]
    pub auth_mode: Value<String>,
    /// Settings for every user.
    #[serde(rename = "DefaultUserSettings")]
    pub default_user_settings: UserSettings,
    /// Domain name.
    #[serde(rename = "DomainName")]
    pub domain_name: Value<String>,
    /// Settings for every space.
    #[serde(
        rename = "DefaultSpaceSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_space_settings: Option<DefaultSpaceSettings>,
    /// `PublicInternetOnly` or `VpcOnly`.
    #[serde(
        rename = "AppNetworkAccessType",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_network_access_type: Option<Value<String>>,
    /// The VPC.
    #[serde(rename = "VpcId", skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<Value<String>>,
    /// Subnets of the apps.
    #[serde(rename = "SubnetIds", skip_serializing_if = "Vec::is_empty")]
    pub subnet_ids: Vec<Value<String>>,
    /// Customer managed key of the domain's EFS home volume (create-only; default: an AWS
    /// managed key).
    #[serde(rename = "KmsKeyId", skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Value<String>>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Domain, "AWS::SageMaker::Domain", DomainAttr {
    DomainArn => "DomainArn",
    DomainId => "DomainId",
    HomeEfsFileSystemId => "HomeEfsFileSystemId",
    SecurityGroupIdForDomainBoundary => "SecurityGroupIdForDomainBoundary",
    Url => "Url",
});

/// `AWS::SageMaker::UserProfile`.
#[derive(Debug, Clone, Serialize)]
pub struct UserProfile {
    /// The domain.
    #[serde(rename = "DomainId")]
    pub domain_id: Value<String>,
    /// Profile name.
    #[serde(rename = "UserProfileName")]
    pub user_profile_name: Value<String>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(UserProfile, "AWS::SageMaker::UserProfile", UserProfileAttr {
    UserProfileArn => "UserProfileArn",
});

/// Owner of a space.
#[derive(Debug, Clone, Serialize)]
pub struct OwnershipSettings {
    /// The owning user profile.
    #[serde(rename = "OwnerUserProfileName")]
    pub owner_user_profile_name: Value<String>,
}

/// Sharing of a space.
#[derive(Debug, Clone, Serialize)]
pub struct SpaceSharingSettings {
    /// `Private` or `Shared`.
    #[serde(rename = "SharingType")]
    pub sharing_type: Value<String>,
}

/// JupyterLab settings of a space.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpaceJupyterLabAppSettings {
    /// Default instance and lifecycle configuration.
    #[serde(
        rename = "DefaultResourceSpec",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_resource_spec: Option<ResourceSpec>,
}

/// Settings of a space.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpaceSettings {
    /// `JupyterLab`, `CodeEditor`, ...
    #[serde(rename = "AppType", skip_serializing_if = "Option::is_none")]
    pub app_type: Option<Value<String>>,
    /// JupyterLab settings.
    #[serde(
        rename = "JupyterLabAppSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub jupyter_lab_app_settings: Option<SpaceJupyterLabAppSettings>,
}

/// `AWS::SageMaker::Space`.
#[derive(Debug, Clone, Serialize)]
pub struct Space {
    /// The domain.
    #[serde(rename = "DomainId")]
    pub domain_id: Value<String>,
    /// Space name.
    #[serde(rename = "SpaceName")]
    pub space_name: Value<String>,
    /// Display name.
    #[serde(rename = "SpaceDisplayName", skip_serializing_if = "Option::is_none")]
    pub space_display_name: Option<Value<String>>,
    /// Owner (required for shared spaces).
    #[serde(rename = "OwnershipSettings", skip_serializing_if = "Option::is_none")]
    pub ownership_settings: Option<OwnershipSettings>,
    /// Sharing.
    #[serde(
        rename = "SpaceSharingSettings",
        skip_serializing_if = "Option::is_none"
    )]
    pub space_sharing_settings: Option<SpaceSharingSettings>,
    /// Settings.
    #[serde(rename = "SpaceSettings", skip_serializing_if = "Option::is_none")]
    pub space_settings: Option<SpaceSettings>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(Space, "AWS::SageMaker::Space", SpaceAttr { SpaceArn => "SpaceArn", Url => "Url" });

/// `AWS::SageMaker::StudioLifecycleConfig`.
#[derive(Debug, Clone, Serialize)]
pub struct StudioLifecycleConfig {
    /// `JupyterLab`, `CodeEditor`, `JupyterServer`, `KernelGateway`.
    #[serde(rename = "StudioLifecycleConfigAppType")]
    pub studio_lifecycle_config_app_type: Value<String>,
    /// The script, base64-encoded.
    #[serde(rename = "StudioLifecycleConfigContent")]
    pub studio_lifecycle_config_content: Value<String>,
    /// Name.
    #[serde(rename = "StudioLifecycleConfigName")]
    pub studio_lifecycle_config_name: Value<String>,
    /// Tags.
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}
resource!(StudioLifecycleConfig, "AWS::SageMaker::StudioLifecycleConfig", StudioLifecycleConfigAttr {
    StudioLifecycleConfigArn => "StudioLifecycleConfigArn",
});
