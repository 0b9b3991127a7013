//! `StackConfig`: everything a synth depends on, with pure parsers for its settings.
//!
//! Invariant: a `StackConfig` that passed [`StackConfig::validate`] only holds values that are
//! safe to embed in templates (names CloudFormation accepts, a git URL without shell
//! metacharacters, a Fargate CPU/memory pair AWS supports, a region of the commercial `aws`
//! partition). Where the values come from (flags,
//! environment, file) is the deployer's business.

use std::fmt;

/// Accepted spellings of a boolean toggle, for error messages.
pub const BOOL_SPELLINGS: &str = "yes, no, true, false, 1, 0 (case-insensitive)";

/// An invalid setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A toggle that is not a recognised boolean spelling (the caller names where it came from).
    #[error("`{0}` is not a boolean; accepted values: {accepted}", accepted = BOOL_SPELLINGS)]
    InvalidBool(String),
    /// A number that does not parse (the caller names where it came from).
    #[error("`{0}` is not a whole number")]
    InvalidNumber(String),
    /// A CPU/memory pair Fargate does not offer.
    #[error(
        "task size {cpu} CPU units / {memory} MiB is not a Fargate size; e.g. 256/512, 512/1024, 1024/2048, 2048/4096, 4096/8192"
    )]
    InvalidTaskSize {
        /// CPU units.
        cpu: u32,
        /// Memory MiB.
        memory: u32,
    },
    /// A number of app tasks outside the supported range.
    #[error("task count {0} is out of range; run 1 to {max} tasks", max = MAX_TASK_COUNT)]
    InvalidTaskCount(u32),
    /// A batch objects' expiry outside the supported range.
    #[error("batch expiry of {0} days is out of range; use 1 to 3650 days")]
    InvalidBatchExpiryDays(u32),
    /// A stack name prefix CloudFormation or S3 would reject.
    #[error(
        "stack prefix `{0}` is invalid; use 1-20 lowercase letters, digits and `-`, starting with a letter"
    )]
    InvalidPrefix(String),
    /// A prefix that makes the load balancer name `<prefix>-alb` start with `internal-`, which
    /// Elastic Load Balancing reserves.
    #[error(
        "stack prefix `{0}` is invalid; the load balancer name `{0}-alb` would begin with `internal-`, which Elastic Load Balancing rejects"
    )]
    ReservedPrefix(String),
    /// A malformed region name.
    #[error("region `{0}` is invalid; expected a name like `us-east-1`")]
    InvalidRegion(String),
    /// A region outside the commercial `aws` partition: the stacks use resource types those
    /// partitions lack (cfn-lint E3006 in cn-north-1 and us-gov-west-1).
    #[error(
        "region `{0}` is outside the commercial aws partition; China, GovCloud and the isolated regions lack resource types the stacks use (CloudFront VPC origins or distributions, Cognito user pools, SageMaker spaces)"
    )]
    UnsupportedPartition(String),
    /// A well-formed name that is no region of the commercial `aws` partition.
    #[error(
        "region `{0}` does not exist; regions of the commercial aws partition start with one of {areas} and a direction (`east`, `southeast`, `central`, ...), like `eu-central-1`",
        areas = AWS_AREAS.join(", ")
    )]
    UnknownRegion(String),
    /// A git URL that is not plain https or contains characters unsafe in a shell script.
    #[error(
        "studio git repo `{0}` is invalid; expected an https:// URL of letters, digits and `-._~:/@%+`"
    )]
    InvalidGitRepo(String),
    /// A git URL with a user name or password: it would be stored in plain text in the
    /// template and the lifecycle configuration. The URL is not echoed.
    #[error(
        "studio git repo must not contain credentials (`user:password@`): they would be stored in plain text in the template; use a public repository URL"
    )]
    GitRepoCredentials,
    /// A Cognito group name Cognito would refuse.
    #[error(
        "facilitator group `{0}` is invalid; use 1-128 letters, digits and punctuation, without spaces"
    )]
    InvalidGroupName(String),
    /// A Secrets Manager name with characters it does not allow.
    #[error("secret name `{0}` is invalid; use 1-512 of letters, digits and `/_+=.@-`")]
    InvalidSecretName(String),
    /// A KMS key setting that is neither a toggle nor a key ARN.
    #[error(
        "KMS key `{0}` is invalid; use no (default), yes (create a key) or a key ARN like arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )]
    InvalidKmsKey(String),
    /// A budget email address that AWS Budgets would reject (no `@`, spaces or line breaks).
    #[error("budget email `{0}` is invalid; expected one address like ops@example.com")]
    InvalidBudgetEmail(String),
    /// A `DEPLOY_TASK_EGRESS` value that is not `nat` or `public-ip`.
    #[error("task egress `{0}` is invalid; use nat (default) or public-ip")]
    InvalidTaskEgress(String),
    /// Studio with `DEPLOY_TASK_EGRESS=public-ip`: the domain's apps live in the private subnets,
    /// which have no way out without a NAT gateway.
    #[error(
        "DEPLOY_TASK_EGRESS=public-ip removes the NAT gateways, and SageMaker Studio's apps in the private subnets need them; set DEPLOY_SAGEMAKER_DOMAIN=no or DEPLOY_TASK_EGRESS=nat"
    )]
    StudioNeedsNat,
    /// A budget amount without an address, or an address without an amount.
    #[error(
        "a budget needs both a monthly amount (DEPLOY_BUDGET_USD, more than 0) and an email address (DEPLOY_BUDGET_EMAIL)"
    )]
    IncompleteBudget,
    /// A key ARN of another region: DynamoDB, CloudWatch Logs, Secrets Manager and SageMaker
    /// only use keys of their own region.
    #[error(
        "KMS key `{key}` is in region {key_region}, but the stacks deploy to {region}; use a key of {region}"
    )]
    KmsKeyRegion {
        /// The ARN given.
        key: String,
        /// Its region.
        key_region: String,
        /// The stacks' region.
        region: String,
    },
}

/// `DEPLOY_KMS_KEY`: which KMS key encrypts the store table, the log groups, the secrets and
/// the Studio domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KmsKey {
    /// AWS managed and owned keys (no monthly cost).
    #[default]
    AwsManaged,
    /// One customer managed key with yearly rotation, created in the network stack.
    Create,
    /// An existing customer managed key (its ARN); its key policy must allow the services.
    Existing(String),
}

impl KmsKey {
    /// Whether a customer managed key is used.
    pub fn is_customer_managed(&self) -> bool {
        !matches!(self, KmsKey::AwsManaged)
    }
}

impl fmt::Display for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmsKey::AwsManaged => f.write_str("no"),
            KmsKey::Create => f.write_str("yes"),
            KmsKey::Existing(arn) => f.write_str(arn),
        }
    }
}

/// `DEPLOY_TASK_EGRESS`: how the app's tasks reach Bedrock, ECR, Secrets Manager and the
/// OpenAI API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskEgress {
    /// Tasks in the private subnets, out through NAT gateways (one per zone, or one with
    /// `DEPLOY_LEAN_NETWORK`).
    #[default]
    Nat,
    /// Tasks in the public subnets with a public IPv4 address each and no NAT gateway; their
    /// security group admits only the load balancer, as in the private subnets.
    PublicIp,
}

impl fmt::Display for TaskEgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskEgress::Nat => "nat",
            TaskEgress::PublicIp => "public-ip",
        })
    }
}

/// Parses `DEPLOY_TASK_EGRESS`: `nat` or `public-ip` (case-insensitive, trimmed).
pub fn parse_task_egress(value: &str) -> Result<TaskEgress, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "nat" => Ok(TaskEgress::Nat),
        "public-ip" => Ok(TaskEgress::PublicIp),
        _ => Err(ConfigError::InvalidTaskEgress(value.to_owned())),
    }
}

/// Parses `DEPLOY_KMS_KEY`: a boolean spelling (`no` = AWS managed keys, `yes` = create one)
/// or the ARN of a key (`arn:<partition>:kms:<region>:<12-digit account>:key/<id>`; aliases
/// are rejected because CloudWatch Logs needs the key ARN).
pub fn parse_kms_key(value: &str) -> Result<KmsKey, ConfigError> {
    let value = value.trim();
    if let Ok(on) = parse_bool(value) {
        return Ok(if on {
            KmsKey::Create
        } else {
            KmsKey::AwsManaged
        });
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "kms", region, account, resource] => {
            partition.starts_with("aws")
                && check_region(region).is_ok()
                && account.len() == 12
                && account.chars().all(|ch| ch.is_ascii_digit())
                && resource.strip_prefix("key/").is_some_and(|id| {
                    (1..=64).contains(&id.len())
                        && id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                })
        }
        _ => false,
    };
    if ok {
        Ok(KmsKey::Existing(value.to_owned()))
    } else {
        Err(ConfigError::InvalidKmsKey(value.to_owned()))
    }
}

/// Checks that an existing key is in `region` (its ARN's fourth field).
pub fn check_kms_key(key: &KmsKey, region: &str) -> Result<(), ConfigError> {
    let KmsKey::Existing(arn) = key else {
        return Ok(());
    };
    let key_region = arn.split(':').nth(3).unwrap_or_default();
    if key_region != region {
        return Err(ConfigError::KmsKeyRegion {
            key: arn.clone(),
            key_region: key_region.to_owned(),
            region: region.to_owned(),
        });
    }
    Ok(())
}

/// Parses a boolean toggle.
pub fn parse_bool(value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" => Ok(false),
        _ => Err(ConfigError::InvalidBool(value.to_owned())),
    }
}

/// Parses a whole number setting.
pub fn parse_u32(value: &str) -> Result<u32, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::InvalidNumber(value.to_owned()))
}

/// Checks a stack name prefix: 1-20 lowercase letters, digits and `-`, starting with a letter,
/// not ending with `-` (stack, bucket and load balancer names are built from it), and not
/// `internal`/`internal-...` (the load balancer `<prefix>-alb` may not begin with `internal-`).
pub fn check_prefix(prefix: &str) -> Result<(), ConfigError> {
    let prefix_ok = (1..=20).contains(&prefix.len())
        && prefix.starts_with(|ch: char| ch.is_ascii_lowercase())
        && !prefix.ends_with('-')
        && prefix
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
    if !prefix_ok {
        return Err(ConfigError::InvalidPrefix(prefix.to_owned()));
    }
    if prefix == "internal" || prefix.starts_with("internal-") {
        return Err(ConfigError::ReservedPrefix(prefix.to_owned()));
    }
    Ok(())
}

/// The area codes of the commercial `aws` partition: the partition's `regionRegex` in the AWS
/// SDKs' `partitions.json` is `^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$`.
pub const AWS_AREAS: [&str; 9] = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"];

/// The direction part of every region name (`us-east-1`, `ap-southeast-7`, `eu-central-2`).
const DIRECTIONS: [&str; 9] = [
    "east",
    "west",
    "north",
    "south",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// Checks a region name's form and that it belongs to the commercial `aws` partition (by the
/// SDKs' own rule, so a region opened later passes; `xx-fake-1` does not).
pub fn check_region(region: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = region.split('-').collect();
    let region_ok = parts.len() >= 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|last| last.chars().all(|ch| ch.is_ascii_digit()));
    if !region_ok {
        return Err(ConfigError::InvalidRegion(region.to_owned()));
    }
    let other_partition = ["cn-", "us-gov-", "us-iso", "eu-iso"];
    if other_partition
        .iter()
        .any(|start| region.starts_with(start))
    {
        return Err(ConfigError::UnsupportedPartition(region.to_owned()));
    }
    let known = matches!(parts.as_slice(), [area, direction, _]
        if AWS_AREAS.contains(area) && DIRECTIONS.contains(direction));
    if !known {
        return Err(ConfigError::UnknownRegion(region.to_owned()));
    }
    Ok(())
}

/// Checks the Studio git URL: https, no credentials, only characters that need no shell
/// quoting (it is embedded in the lifecycle script).
pub fn check_git_repo(repo: &str) -> Result<(), ConfigError> {
    let authority = repo
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(ConfigError::GitRepoCredentials);
    }
    let repo_ok = repo.len() > "https://".len()
        && repo.len() <= 1024
        && repo.starts_with("https://")
        && repo
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-._~:/@%+".contains(ch));
    if !repo_ok {
        return Err(ConfigError::InvalidGitRepo(repo.to_owned()));
    }
    Ok(())
}

/// Checks a Secrets Manager secret name (1-512 of letters, digits and `/_+=.@-`).
pub fn check_secret_name(name: &str) -> Result<(), ConfigError> {
    let name_ok = (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@-".contains(ch));
    if !name_ok {
        return Err(ConfigError::InvalidSecretName(name.to_owned()));
    }
    Ok(())
}

/// Checks a Cognito group name (the facilitators' group): 1 to 128 characters, none of them
/// white space or control characters (Cognito's pattern is `[\p{L}\p{M}\p{S}\p{N}\p{P}]+`).
pub fn check_group_name(name: &str) -> Result<(), ConfigError> {
    let name_ok = (1..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|ch| !ch.is_whitespace() && !ch.is_control());
    if !name_ok {
        return Err(ConfigError::InvalidGroupName(name.to_owned()));
    }
    Ok(())
}

/// Fargate task size: CPU units (1024 = 1 vCPU) and memory MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskSize {
    cpu: u32,
    memory: u32,
}

impl TaskSize {
    /// A size Fargate supports (Linux), else an error.
    pub fn new(cpu: u32, memory: u32) -> Result<TaskSize, ConfigError> {
        let gib = 1024;
        let ok = match cpu {
            256 => [512, 1024, 2048].contains(&memory),
            512 => (1..=4).any(|n| memory == n * gib),
            1024 => (2..=8).any(|n| memory == n * gib),
            2048 => (4..=16).any(|n| memory == n * gib),
            4096 => (8..=30).any(|n| memory == n * gib),
            8192 => (4..=15).any(|n| memory == n * 4 * gib),
            16384 => (4..=15).any(|n| memory == n * 8 * gib),
            _ => false,
        };
        if ok {
            Ok(TaskSize { cpu, memory })
        } else {
            Err(ConfigError::InvalidTaskSize { cpu, memory })
        }
    }

    /// CPU units.
    pub fn cpu(self) -> u32 {
        self.cpu
    }

    /// Memory MiB.
    pub fn memory(self) -> u32 {
        self.memory
    }
}

impl Default for TaskSize {
    /// 0.5 vCPU / 1 GiB: plenty for a web UI that streams model calls.
    fn default() -> TaskSize {
        TaskSize {
            cpu: 512,
            memory: 1024,
        }
    }
}

impl fmt::Display for TaskSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cpu, self.memory)
    }
}

/// The most app tasks the service runs (each is a Fargate task that costs money every hour).
pub const MAX_TASK_COUNT: u32 = 10;

/// Checks a number of app tasks: 1 to [`MAX_TASK_COUNT`].
pub fn check_task_count(count: u32) -> Result<(), ConfigError> {
    if (1..=MAX_TASK_COUNT).contains(&count) {
        Ok(())
    } else {
        Err(ConfigError::InvalidTaskCount(count))
    }
}

/// Checks a budget alert address: one address, no spaces or line breaks (AWS Budgets rejects
/// line breaks; the address ends up in a template), at most 254 characters.
pub fn check_budget_email(email: &str) -> Result<(), ConfigError> {
    let parts: Vec<&str> = email.split('@').collect();
    let ok = email.len() <= 254
        && matches!(parts.as_slice(), [local, domain]
            if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'))
        && email
            .chars()
            .all(|ch| ch.is_ascii_graphic() && !"\"(),:;<>[]\\`".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidBudgetEmail(email.to_owned()))
    }
}

/// Checks the budget pair: both set (an amount above 0 and an address) or neither.
pub fn check_budget(limit_usd: u32, email: &str) -> Result<(), ConfigError> {
    match (limit_usd, email.is_empty()) {
        (0, true) => Ok(()),
        (0, false) | (_, true) => Err(ConfigError::IncompleteBudget),
        (_, false) => check_budget_email(email),
    }
}

/// How long batch objects stay by default (days).
pub const DEFAULT_BATCH_EXPIRY_DAYS: u32 = 30;

/// Checks the batch objects' expiry: 1 to 3650 days.
pub fn check_batch_expiry_days(days: u32) -> Result<(), ConfigError> {
    if (1..=3650).contains(&days) {
        Ok(())
    } else {
        Err(ConfigError::InvalidBatchExpiryDays(days))
    }
}

/// Everything the stacks depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// Prefix of stack names, export names and named resources.
    pub prefix: String,
    /// Region the stacks are deployed to.
    pub region: String,
    /// `DEPLOY_SAGEMAKER_DOMAIN`: synthesize the Studio stack.
    pub deploy_sagemaker_domain: bool,
    /// `DEPLOY_PROMPT_APP`: synthesize the app stack.
    pub deploy_prompt_app: bool,
    /// `CDK_NAG`: run the security rule pack at synth (does not change templates).
    pub cdk_nag: bool,
    /// Write CloudFront access logs to the logs bucket.
    pub cloudfront_access_logs: bool,
    /// Fargate task size.
    pub task_size: TaskSize,
    /// `DEPLOY_TASK_COUNT`: the service's desired count (tasks share the DynamoDB store; with
    /// two or more ECS spreads them over both private subnets' Availability Zones).
    pub task_count: u32,
    /// Repository the Studio lifecycle configuration clones.
    pub studio_git_repo: String,
    /// Secrets Manager name of the OpenAI API key the task may read.
    pub openai_secret_name: String,
    /// `DEPLOY_KMS_KEY`: AWS managed keys (default), a created or an existing customer
    /// managed key.
    pub kms_key: KmsKey,
    /// `DEPLOY_LEAN_NETWORK`: one NAT gateway shared by both zones (instead of one per zone) and
    /// free gateway endpoints for S3 and DynamoDB; cheaper, but a zone outage of the NAT's zone
    /// cuts the other zone's way out too.
    pub lean_network: bool,
    /// `DEPLOY_FARGATE_SPOT`: run the app tasks on Fargate Spot (interruptible, about 70%
    /// cheaper); an interrupted task's runs resume on the next task through the store's lease.
    pub fargate_spot: bool,
    /// `DEPLOY_TASK_EGRESS`: tasks behind NAT gateways (default) or in the public subnets with
    /// a public address and no NAT gateway at all (Studio off).
    pub task_egress: TaskEgress,
    /// `DEPLOY_BUDGET_USD`: a monthly AWS Budgets cost budget of the account in USD (0: none).
    pub budget_usd: u32,
    /// `DEPLOY_BUDGET_EMAIL`: who the budget alerts (80% actual, 100% forecast) go to.
    pub budget_email: String,
    /// `DEPLOY_BATCH_EXPIRY_DAYS`: days after which Bedrock batch inputs and outputs expire
    /// from the data bucket.
    pub batch_expiry_days: u32,
    /// `DEPLOY_FACILITATOR_GROUP`: the user pool's group whose members are facilitators of the
    /// web app (the `cognito:groups` claim of their tokens).
    pub facilitator_group: String,
}

impl Default for StackConfig {
    fn default() -> StackConfig {
        StackConfig {
            prefix: "llm-eval".to_owned(),
            region: "us-east-1".to_owned(),
            deploy_sagemaker_domain: true,
            deploy_prompt_app: true,
            cdk_nag: false,
            cloudfront_access_logs: false,
            task_size: TaskSize::default(),
            task_count: 1,
            studio_git_repo: "https://github.com/aws/amazon-sagemaker-examples.git".to_owned(),
            openai_secret_name: "openai_key".to_owned(),
            kms_key: KmsKey::AwsManaged,
            lean_network: false,
            fargate_spot: false,
            task_egress: TaskEgress::Nat,
            budget_usd: 0,
            budget_email: String::new(),
            batch_expiry_days: DEFAULT_BATCH_EXPIRY_DAYS,
            facilitator_group: "facilitators".to_owned(),
        }
    }
}

impl StackConfig {
    /// Checks every value that ends up in a template.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_prefix(&self.prefix)?;
        check_region(&self.region)?;
        check_git_repo(&self.studio_git_repo)?;
        check_task_count(self.task_count)?;
        check_kms_key(&self.kms_key, &self.region)?;
        check_budget(self.budget_usd, &self.budget_email)?;
        check_batch_expiry_days(self.batch_expiry_days)?;
        if self.deploy_sagemaker_domain && self.task_egress == TaskEgress::PublicIp {
            return Err(ConfigError::StudioNeedsNat);
        }
        check_group_name(&self.facilitator_group)?;
        check_secret_name(&self.openai_secret_name)
    }

    /// Whether an AWS Budgets budget is deployed.
    pub fn has_budget(&self) -> bool {
        self.budget_usd > 0
    }

    /// How many NAT gateways (each with an Elastic IP) the network stack runs when not paused.
    pub fn nat_gateways(&self) -> u32 {
        match (self.task_egress, self.lean_network) {
            (TaskEgress::PublicIp, _) => 0,
            (TaskEgress::Nat, true) => 1,
            (TaskEgress::Nat, false) => 2,
        }
    }

    /// This config with every combination of the boolean toggles, of a created customer
    /// managed key or none, and of the economy options: none, a lean network with Fargate Spot
    /// and a budget (on or off together: they touch different resources), or those with
    /// `DEPLOY_TASK_EGRESS=public-ip` too (which excludes Studio) (64 + 16 = 80 configs).
    pub fn toggle_combinations(&self) -> impl Iterator<Item = StackConfig> + '_ {
        (0u8..96).filter_map(move |bits| {
            let economy = bits >> 5;
            let public_ip = economy == 2;
            let studio = bits & 1 != 0;
            if public_ip && studio {
                return None;
            }
            Some(StackConfig {
                lean_network: economy != 0,
                fargate_spot: economy != 0,
                task_egress: if public_ip {
                    TaskEgress::PublicIp
                } else {
                    TaskEgress::Nat
                },
                budget_usd: if economy != 0 { 50 } else { 0 },
                budget_email: if economy != 0 {
                    "workshop-owner@example.com".to_owned()
                } else {
                    String::new()
                },
                deploy_sagemaker_domain: studio,
                deploy_prompt_app: bits & 2 != 0,
                cdk_nag: bits & 4 != 0,
                cloudfront_access_logs: bits & 8 != 0,
                kms_key: if bits & 16 != 0 {
                    KmsKey::Create
                } else {
                    KmsKey::AwsManaged
                },
                ..self.clone()
            })
        })
    }

    /// A short name for the toggles, e.g. `studio-app-nag-logs` or `none`, for directory names.
    pub fn toggle_label(&self) -> String {
        let parts: Vec<&str> = [
            (self.deploy_sagemaker_domain, "studio"),
            (self.deploy_prompt_app, "app"),
            (self.cdk_nag, "nag"),
            (self.cloudfront_access_logs, "logs"),
            (self.kms_key == KmsKey::Create, "kms"),
            (matches!(self.kms_key, KmsKey::Existing(_)), "own-kms"),
            (self.lean_network, "lean"),
            (self.fargate_spot, "spot"),
            (self.task_egress == TaskEgress::PublicIp, "public-ip"),
            (self.has_budget(), "budget"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, label)| *label)
        .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join("-")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_bool(value: &str, expected: Option<bool>) {
        assert_eq!(parse_bool(value).ok(), expected, "{value}");
    }

    #[test]
    fn bool_yes() {
        check_bool("yes", Some(true))
    }
    #[test]
    fn bool_yes_upper() {
        check_bool("YES", Some(true))
    }
    #[test]
    fn bool_true_mixed() {
        check_bool("True", Some(true))
    }
    #[test]
    fn bool_one() {
        check_bool("1", Some(true))
    }
    #[test]
    fn bool_no() {
        check_bool("No", Some(false))
    }
    #[test]
    fn bool_false() {
        check_bool("FALSE", Some(false))
    }
    #[test]
    fn bool_zero() {
        check_bool("0", Some(false))
    }
    #[test]
    fn bool_padded() {
        check_bool(" yes ", Some(true))
    }
    #[test]
    fn bool_on_rejected() {
        check_bool("on", None)
    }
    #[test]
    fn bool_empty_rejected() {
        check_bool("", None)
    }
    #[test]
    fn bool_y_rejected() {
        check_bool("y", None)
    }

    #[test]
    fn bool_error_names_accepted_values() {
        let err = parse_bool("maybe").unwrap_err().to_string();
        assert_eq!(
            err,
            "`maybe` is not a boolean; accepted values: yes, no, true, false, 1, 0 (case-insensitive)"
        );
    }

    fn check_size(cpu: u32, memory: u32, ok: bool) {
        assert_eq!(TaskSize::new(cpu, memory).is_ok(), ok, "{cpu}/{memory}");
    }

    #[test]
    fn size_default() {
        check_size(512, 1024, true)
    }
    #[test]
    fn size_quarter() {
        check_size(256, 512, true)
    }
    #[test]
    fn size_two_vcpu() {
        check_size(2048, 16384, true)
    }
    #[test]
    fn size_eight_vcpu() {
        check_size(8192, 16384, true)
    }
    #[test]
    fn size_original_oversized_is_valid_but_not_default() {
        check_size(16384, 32768, true)
    }
    #[test]
    fn size_too_little_memory() {
        check_size(1024, 1024, false)
    }
    #[test]
    fn size_odd_cpu() {
        check_size(300, 1024, false)
    }

    fn check_config(edit: fn(&mut StackConfig), ok: bool) {
        let mut cfg = StackConfig::default();
        edit(&mut cfg);
        assert_eq!(cfg.validate().is_ok(), ok, "{cfg:?}");
    }

    #[test]
    fn default_valid() {
        check_config(|_| {}, true)
    }
    #[test]
    fn prefix_upper() {
        check_config(|c| c.prefix = "Llm".into(), false)
    }
    #[test]
    fn prefix_trailing_dash() {
        check_config(|c| c.prefix = "llm-".into(), false)
    }
    #[test]
    fn prefix_long() {
        check_config(|c| c.prefix = "a".repeat(21), false)
    }
    #[test]
    fn region_ok() {
        check_config(|c| c.region = "eu-central-1".into(), true)
    }
    #[test]
    fn regression_a_fake_region_is_rejected() {
        for region in ["xx-fake-1", "us-fake-1", "eu-central-1-2", "zz-east-1"] {
            assert!(
                matches!(check_region(region), Err(ConfigError::UnknownRegion(_))),
                "{region}"
            );
        }
        for region in [
            "us-east-1",
            "ap-southeast-7",
            "mx-central-1",
            "il-central-1",
            "ca-west-1",
            "af-south-1",
            "me-central-1",
            "sa-east-1",
            "eu-north-1",
            "ap-northeast-3",
        ] {
            assert!(check_region(region).is_ok(), "{region}");
        }
    }
    #[test]
    fn region_gov_rejected() {
        check_config(|c| c.region = "us-gov-west-1".into(), false)
    }
    #[test]
    fn region_china_rejected() {
        check_config(|c| c.region = "cn-north-1".into(), false)
    }
    #[test]
    fn region_isolated_rejected() {
        check_config(|c| c.region = "us-isob-east-1".into(), false)
    }
    #[test]
    fn region_new_commercial_ok() {
        check_config(|c| c.region = "ap-southeast-7".into(), true)
    }
    #[test]
    fn region_bad() {
        check_config(|c| c.region = "useast1".into(), false)
    }
    #[test]
    fn repo_http() {
        check_config(|c| c.studio_git_repo = "http://x/y.git".into(), false)
    }
    #[test]
    fn repo_shell_injection() {
        check_config(
            |c| c.studio_git_repo = "https://x/y.git;rm -rf /".into(),
            false,
        )
    }
    #[test]
    fn repo_dollar() {
        check_config(|c| c.studio_git_repo = "https://x/$(id)".into(), false)
    }
    #[test]
    fn prefix_internal_rejected() {
        check_config(|c| c.prefix = "internal".into(), false)
    }
    #[test]
    fn prefix_internal_dash_rejected() {
        check_config(|c| c.prefix = "internal-tools".into(), false)
    }
    #[test]
    fn prefix_internals_ok() {
        check_config(|c| c.prefix = "internals".into(), true)
    }
    #[test]
    fn prefix_twenty_ok() {
        check_config(|c| c.prefix = "a".repeat(20), true)
    }
    #[test]
    fn repo_credentials_rejected() {
        check_config(
            |c| c.studio_git_repo = "https://user:token@github.com/o/r.git".into(),
            false,
        )
    }
    #[test]
    fn repo_at_in_path_ok() {
        check_config(
            |c| c.studio_git_repo = "https://example.com/r/@scope/pkg.git".into(),
            true,
        )
    }
    #[test]
    fn repo_credentials_not_echoed() {
        let cfg = StackConfig {
            studio_git_repo: "https://user:s3cret@github.com/o/r.git".into(),
            ..StackConfig::default()
        };
        let message = cfg.validate().unwrap_err().to_string();
        assert!(!message.contains("s3cret"), "{message}");
    }
    #[test]
    fn budget_complete() {
        check_config(
            |c| {
                c.budget_usd = 40;
                c.budget_email = "ops@example.com".into()
            },
            true,
        )
    }
    #[test]
    fn budget_without_email() {
        check_config(|c| c.budget_usd = 40, false)
    }
    #[test]
    fn budget_email_without_amount() {
        check_config(|c| c.budget_email = "ops@example.com".into(), false)
    }
    #[test]
    fn budget_email_two_addresses() {
        check_config(
            |c| {
                c.budget_usd = 40;
                c.budget_email = "a@example.com,b@example.com".into()
            },
            false,
        )
    }
    #[test]
    fn budget_email_line_break() {
        check_config(
            |c| {
                c.budget_usd = 40;
                c.budget_email = "a@example.com\nb".into()
            },
            false,
        )
    }
    #[test]
    fn secret_name_space() {
        check_config(|c| c.openai_secret_name = "a b".into(), false)
    }
    #[test]
    fn facilitator_group_names_cognito_takes() {
        check_config(|c| c.facilitator_group = "a b".into(), false);
        check_config(|c| c.facilitator_group = String::new(), false);
        check_config(|c| c.facilitator_group = "x".repeat(129), false);
        check_config(|c| c.facilitator_group = "x".repeat(128), true);
        check_config(|c| c.facilitator_group = "workshop-hosts".into(), true);
    }

    #[test]
    fn combinations_cover_every_toggle() {
        let labels: Vec<String> = StackConfig::default()
            .toggle_combinations()
            .map(|c| c.toggle_label())
            .collect();
        assert_eq!(labels.len(), 80);
        assert_eq!(labels[0], "none");
        assert_eq!(labels[15], "studio-app-nag-logs");
        assert_eq!(labels[31], "studio-app-nag-logs-kms");
        assert_eq!(labels[32], "lean-spot-budget");
        assert_eq!(labels[63], "studio-app-nag-logs-kms-lean-spot-budget");
        // Public egress only without Studio.
        assert_eq!(labels[64], "lean-spot-public-ip-budget");
        assert_eq!(labels[65], "app-lean-spot-public-ip-budget");
        assert_eq!(labels[79], "app-nag-logs-kms-lean-spot-public-ip-budget");
        let unique: std::collections::BTreeSet<_> = labels.iter().collect();
        assert_eq!(unique.len(), 80);
        for cfg in StackConfig::default().toggle_combinations() {
            assert_eq!(cfg.validate(), Ok(()), "{}", cfg.toggle_label());
        }
    }

    #[test]
    fn task_egress_values() {
        assert_eq!(parse_task_egress("nat"), Ok(TaskEgress::Nat));
        assert_eq!(parse_task_egress(" Public-IP "), Ok(TaskEgress::PublicIp));
        assert_eq!(
            parse_task_egress("public"),
            Err(ConfigError::InvalidTaskEgress("public".into()))
        );
        assert_eq!(TaskEgress::PublicIp.to_string(), "public-ip");
    }
    #[test]
    fn public_ip_egress_without_studio() {
        check_config(
            |c| {
                c.task_egress = TaskEgress::PublicIp;
                c.deploy_sagemaker_domain = false
            },
            true,
        )
    }
    #[test]
    fn public_ip_egress_with_studio_refused() {
        check_config(|c| c.task_egress = TaskEgress::PublicIp, false)
    }
    #[test]
    fn nat_gateways_per_egress() {
        let public = StackConfig {
            task_egress: TaskEgress::PublicIp,
            lean_network: true,
            ..StackConfig::default()
        };
        assert_eq!(public.nat_gateways(), 0);
        assert_eq!(StackConfig::default().nat_gateways(), 2);
    }

    const KEY_ARN: &str =
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn kms_key_toggles() {
        assert_eq!(parse_kms_key("no"), Ok(KmsKey::AwsManaged));
        assert_eq!(parse_kms_key(" YES "), Ok(KmsKey::Create));
    }
    #[test]
    fn kms_key_arn() {
        assert_eq!(parse_kms_key(KEY_ARN), Ok(KmsKey::Existing(KEY_ARN.into())));
        assert_eq!(KmsKey::Existing(KEY_ARN.into()).to_string(), KEY_ARN);
    }
    #[test]
    fn kms_key_alias_rejected() {
        let alias = "arn:aws:kms:us-east-1:111122223333:alias/mine";
        assert_eq!(
            parse_kms_key(alias),
            Err(ConfigError::InvalidKmsKey(alias.into()))
        );
    }
    #[test]
    fn kms_key_bad_account_rejected() {
        let arn = "arn:aws:kms:us-east-1:1111:key/abc";
        assert!(parse_kms_key(arn).is_err());
    }
    #[test]
    fn kms_key_other_region_rejected() {
        let cfg = StackConfig {
            region: "eu-west-1".into(),
            kms_key: KmsKey::Existing(KEY_ARN.into()),
            ..StackConfig::default()
        };
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            format!(
                "KMS key `{KEY_ARN}` is in region us-east-1, but the stacks deploy to eu-west-1; use a key of eu-west-1"
            )
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_bool_never_panics(value in ".*") {
            let _ = parse_bool(&value);
        }

        #[test]
        fn validate_never_panics(prefix in ".*", region in ".*", repo in ".*", name in ".*") {
            let cfg = StackConfig {
                prefix, region, studio_git_repo: repo, openai_secret_name: name,
                ..StackConfig::default()
            };
            let _ = cfg.validate();
        }
    }
}
