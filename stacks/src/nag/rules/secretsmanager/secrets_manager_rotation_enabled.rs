//! `AwsSolutions-SMG4`: secrets have a rotation schedule with a rotation function and rules.

use crate::nag::resolve::referenced_id;
use crate::nag::rules::verdict;
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `SecretsManagerRotationEnabled`.
pub const SECRETS_MANAGER_ROTATION_ENABLED: Rule = Rule {
    id: "AwsSolutions-SMG4",
    name: "SecretsManagerRotationEnabled",
    level: Level::Error,
    info: "This secret has no automatic rotation schedule.",
    explanation: "Rotation bounds how long a leaked secret stays useful. \
Add an AWS::SecretsManager::RotationSchedule whose `SecretId` refers to the secret (or to its SecretTargetAttachment), with a `RotationLambdaARN` or `HostedRotationLambda` and `RotationRules` (AutomaticallyAfterDays or ScheduleExpression). Secrets that cannot rotate (third-party API keys) should be suppressed with that reason.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::SecretsManager::Secret" {
        return Ok(Compliance::NotApplicable);
    }
    let attachments: Vec<&str> = res
        .referrers(&["AWS::SecretsManager::SecretTargetAttachment"])
        .filter(|attachment| {
            attachment.prop("SecretId").and_then(referenced_id) == Some(res.logical_id)
        })
        .map(|attachment| attachment.logical_id)
        .collect();
    const SCHEDULE: &[&str] = &["AWS::SecretsManager::RotationSchedule"];
    let mut schedules: Vec<Resource<'_>> = res.referrers(SCHEDULE).collect();
    for attachment in &attachments {
        schedules.extend(
            res.lookup(attachment)
                .into_iter()
                .flat_map(|attachment| attachment.referrers(SCHEDULE)),
        );
    }
    let rotated = schedules.iter().any(|schedule| {
        let target = schedule.prop("SecretId").and_then(referenced_id);
        let targets_secret =
            target.is_some_and(|target| target == res.logical_id || attachments.contains(&target));
        let has_function = schedule.prop("HostedRotationLambda").is_some()
            || schedule.prop("RotationLambdaARN").is_some();
        let has_rules = schedule.prop("RotationRules").is_some_and(|rules| {
            rules.get("AutomaticallyAfterDays").is_some()
                || rules.get("ScheduleExpression").is_some()
        });
        targets_secret && has_function && has_rules
    });
    verdict(!rotated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn tpl(schedule: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::SecretsManager::Secret}}, A: {{Type: AWS::SecretsManager::SecretTargetAttachment, Properties: {{SecretId: !Ref R, TargetId: db, TargetType: AWS::RDS::DBInstance}}}}, S: {{Type: AWS::SecretsManager::RotationSchedule, Properties: {schedule}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &tpl(
                    "{SecretId: !Ref R, RotationLambdaARN: !GetAtt F.Arn, RotationRules: {AutomaticallyAfterDays: 30}}"
                ),
                &SECRETS_MANAGER_ROTATION_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{SecretId: !Ref A, HostedRotationLambda: {RotationType: MySQLSingleUser}, RotationRules: {ScheduleExpression: rate(10 days)}}"
                ),
                &SECRETS_MANAGER_ROTATION_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl("{SecretId: !Ref R, RotationRules: {AutomaticallyAfterDays: 30}}"),
                &SECRETS_MANAGER_ROTATION_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{SecretId: !Ref Other, RotationLambdaARN: f, RotationRules: {AutomaticallyAfterDays: 30}}"
                ),
                &SECRETS_MANAGER_ROTATION_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SecretsManager::Secret}}",
                &SECRETS_MANAGER_ROTATION_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SecretsManager::ResourcePolicy}}",
                &SECRETS_MANAGER_ROTATION_ENABLED
            ),
            "n/a"
        );
        assert_suppressible(
            "Resources: {R: {Type: AWS::SecretsManager::Secret}}",
            "AwsSolutions-SMG4",
        );
    }
}
