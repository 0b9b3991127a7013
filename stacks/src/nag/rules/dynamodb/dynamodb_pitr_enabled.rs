//! `AwsSolutions-DDB3`: DynamoDB tables have point-in-time recovery enabled.

use crate::nag::rules::{field, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Scalar};

/// cdk-nag `DynamoDBPITREnabled`.
pub const DYNAMODB_PITR_ENABLED: Rule = Rule {
    id: "AwsSolutions-DDB3",
    name: "DynamoDBPITREnabled",
    level: Level::Error,
    info: "The DynamoDB table does not have point-in-time recovery enabled.",
    explanation: "Point-in-time recovery keeps continuous backups of the last 35 days, so a table damaged by a bad deploy, a bug or a mistaken delete can be restored to any second. \
Set `PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}` on the table; a table of throw-away data (caches, sessions) may be suppressed with that reason.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::DynamoDB::Table" {
        return Ok(Compliance::NotApplicable);
    }
    let mut bad = false;
    for spec in res.objects(
        res.prop("PointInTimeRecoverySpecification"),
        "PointInTimeRecoverySpecification",
    )? {
        let enabled = field(
            res,
            spec,
            "PointInTimeRecoveryEnabled",
            "PointInTimeRecoverySpecification",
        )?;
        bad |= enabled
            .into_iter()
            .any(|value| value.and_then(Scalar::as_bool) != Some(true));
    }
    verdict(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn table(properties: &str) -> String {
        format!(
            "Resources: {{R: {{Type: AWS::DynamoDB::Table, Properties: {{KeySchema: [{{AttributeName: pk, KeyType: HASH}}]{properties}}}}}}}"
        )
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &table(", PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}"),
                &DYNAMODB_PITR_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &table(", PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: false}"),
                &DYNAMODB_PITR_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &table(", PointInTimeRecoverySpecification: {}"),
                &DYNAMODB_PITR_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(status(&table(""), &DYNAMODB_PITR_ENABLED), "non-compliant");
        assert_eq!(
            status(
                &table(
                    ", PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: \"True\"}"
                ),
                &DYNAMODB_PITR_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::SQS::Queue}}",
                &DYNAMODB_PITR_ENABLED
            ),
            "n/a"
        );
        assert_suppressible(&table(""), "AwsSolutions-DDB3");
    }
}
