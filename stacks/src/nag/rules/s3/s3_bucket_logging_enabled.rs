//! `AwsSolutions-S1`: buckets have server access logging (log buckets themselves excepted).

use crate::nag::resolve::flatten;
use crate::nag::rules::{mentions, verdict};
use crate::nag::{ByValue, CheckResult, Compliance, Level, Resource, Rule};

/// cdk-nag `S3BucketLoggingEnabled`.
pub const S3_BUCKET_LOGGING_ENABLED: Rule = Rule {
    id: "AwsSolutions-S1",
    name: "S3BucketLoggingEnabled",
    level: Level::Error,
    info: "Server access logging is off for this S3 bucket.",
    explanation: "Server access logs record each request made to the bucket, which audits and incident response depend on. \
Set `LoggingConfiguration.DestinationBucketName` to a log bucket; a bucket that is itself the log destination of another bucket in the template is accepted.",
    check: Some(check),
};

fn logs_somewhere(res: &Resource<'_>) -> bool {
    res.variants(res.prop("LoggingConfiguration"))
        .into_iter()
        .all(|config| {
            config
                .and_then(|config| config.as_object())
                .is_some_and(|config| {
                    config.get("DestinationBucketName").is_some()
                        || config.get("LogFilePrefix").is_some()
                })
        })
}

fn is_log_destination(res: &Resource<'_>) -> bool {
    const BUCKET: &[&str] = &["AWS::S3::Bucket"];
    // Only a literal name can be written as another bucket's destination.
    let own_name = res.prop("BucketName").filter(|name| name.is_string());
    let own_text = own_name.and_then(|name| name.as_str());
    let logs_here = |other: &Resource<'_>| {
        let Some(destination) = other
            .prop("LoggingConfiguration")
            .and_then(|config| config.get("DestinationBucketName"))
        else {
            return false;
        };
        let flat = flatten(destination);
        mentions(&flat, res.logical_id, false) || own_text == Some(flat.as_str())
    };
    // Buckets referencing this one, and (when it has a name) those naming it as their
    // destination, found through the template's index rather than a scan of every bucket.
    res.referrers(BUCKET).any(|other| logs_here(&other))
        || own_name.is_some_and(|name| {
            res.others_with_value(ByValue::BucketLogDestination, name)
                .any(|other| logs_here(&other))
        })
}

fn check(res: &Resource<'_>) -> CheckResult {
    if res.resource_type != "AWS::S3::Bucket" {
        return Ok(Compliance::NotApplicable);
    }
    verdict(!logs_somewhere(res) && !is_log_destination(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn tpl(resources: &str) -> String {
        format!("Conditions: {{C: !Equals [a, b]}}\nResources: {{{resources}}}")
    }

    #[test]
    fn cases() {
        assert_eq!(
            status(
                &tpl(
                    "R: {Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: {DestinationBucketName: !Ref Logs}}}"
                ),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "R: {Type: AWS::S3::Bucket}, Data: {Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: {DestinationBucketName: !Ref R}}}"
                ),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "R: {Type: AWS::S3::Bucket, Properties: {BucketName: logs}}, Data: {Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: {DestinationBucketName: logs}}}"
                ),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "R: {Type: AWS::S3::Bucket}, Data: {Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: {DestinationBucketName: !Ref R2}}}"
                ),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "R: {Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: !If [C, {DestinationBucketName: x}, !Ref AWS::NoValue]}}"
                ),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl("R: {Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: {}}}"),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl("R: {Type: AWS::SQS::Queue}"),
                &S3_BUCKET_LOGGING_ENABLED
            ),
            "n/a"
        );
        assert_suppressible(&tpl("R: {Type: AWS::S3::Bucket}"), "AwsSolutions-S1");
    }
}
