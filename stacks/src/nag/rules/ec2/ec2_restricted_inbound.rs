//! `AwsSolutions-EC23`: no security group ingress from `0.0.0.0/0` or `::/0`.

use serde_json::{Map, Value};

use crate::nag::rules::{field, items, verdict};
use crate::nag::{CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `EC2RestrictedInbound`.
pub const EC2_RESTRICTED_INBOUND: Rule = Rule {
    id: "AwsSolutions-EC23",
    name: "EC2RestrictedInbound",
    level: Level::Error,
    info: "The security group allows inbound traffic from 0.0.0.0/0 or ::/0.",
    explanation: "An ingress rule open to the whole internet exposes every listening port it covers to scanning and attack. \
Allow only the sources that need access (a load balancer's or CloudFront's prefix list, another security group, a corporate range); \
any CIDR ending in /0 is flagged. Ingress given as an embedded list or as separate AWS::EC2::SecurityGroupIngress resources is checked.",
    check: Some(check),
};

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        "AWS::EC2::SecurityGroup" => {
            for (path, rule) in items(
                res,
                res.prop("SecurityGroupIngress"),
                "SecurityGroupIngress",
            )? {
                if open_to_world(res, rule, &path)? {
                    return verdict(true);
                }
            }
            verdict(false)
        }
        "AWS::EC2::SecurityGroupIngress" => {
            let properties = res.body.get("Properties").and_then(Value::as_object);
            match properties {
                Some(properties) => verdict(open_to_world(res, properties, "Properties")?),
                None => verdict(false),
            }
        }
        _ => Ok(Compliance::NotApplicable),
    }
}

fn open_to_world<'a>(
    res: &Resource<'a>,
    rule: &'a Map<String, Value>,
    path: &str,
) -> Result<bool, Unresolved> {
    for key in ["CidrIp", "CidrIpv6"] {
        let values = field(res, Some(rule), key, path)?;
        if values
            .into_iter()
            .flatten()
            .any(|cidr| cidr.text().contains("/0"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    fn sg(ingress: &str) -> String {
        format!(
            "Parameters: {{Open: {{Type: String, Default: 0.0.0.0/0}}, Free: {{Type: String}}}}\nConditions: {{C: !Equals [a, b]}}\nResources: {{R: {{Type: AWS::EC2::SecurityGroup, Properties: {{GroupDescription: web, SecurityGroupIngress: {ingress}}}}}}}"
        )
    }

    #[test]
    fn security_group() {
        assert_eq!(
            status(
                &sg("[{CidrIp: 10.0.0.0/16, IpProtocol: tcp}]"),
                &EC2_RESTRICTED_INBOUND
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &sg("[{SourceSecurityGroupId: sg-1}]"),
                &EC2_RESTRICTED_INBOUND
            ),
            "compliant"
        );
        assert_eq!(
            status(&sg("[{CidrIp: 0.0.0.0/0}]"), &EC2_RESTRICTED_INBOUND),
            "non-compliant"
        );
        assert_eq!(
            status(&sg("[{CidrIpv6: '::/0'}]"), &EC2_RESTRICTED_INBOUND),
            "non-compliant"
        );
        assert_eq!(
            status(&sg("[{CidrIp: !Ref Open}]"), &EC2_RESTRICTED_INBOUND),
            "non-compliant"
        );
        assert_eq!(
            status(
                &sg("[!If [C, {CidrIp: 10.0.0.0/8}, {CidrIp: 0.0.0.0/0}]]"),
                &EC2_RESTRICTED_INBOUND
            ),
            "non-compliant"
        );
        assert_eq!(
            status(&sg("[{CidrIp: !Ref Free}]"), &EC2_RESTRICTED_INBOUND),
            "unresolved: SecurityGroupIngress[0].CidrIp"
        );
        assert_eq!(
            status(&sg("!Ref Free"), &EC2_RESTRICTED_INBOUND),
            "unresolved: SecurityGroupIngress"
        );
        assert_suppressible(&sg("[{CidrIp: 0.0.0.0/0}]"), "AwsSolutions-EC23");
    }

    #[test]
    fn ingress_resource_and_other_types() {
        let ingress = |cidr: &str| {
            format!(
                "Resources: {{R: {{Type: AWS::EC2::SecurityGroupIngress, Properties: {{GroupId: sg-1, {cidr}}}}}}}"
            )
        };
        assert_eq!(
            status(&ingress("CidrIp: 192.168.0.0/24"), &EC2_RESTRICTED_INBOUND),
            "compliant"
        );
        assert_eq!(
            status(&ingress("CidrIp: 0.0.0.0/0"), &EC2_RESTRICTED_INBOUND),
            "non-compliant"
        );
        assert_eq!(
            status(
                "Resources: {R: {Type: AWS::S3::Bucket}}",
                &EC2_RESTRICTED_INBOUND
            ),
            "n/a"
        );
    }
}
