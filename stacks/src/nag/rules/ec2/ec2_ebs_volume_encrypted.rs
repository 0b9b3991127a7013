//! `AwsSolutions-EC26`: EBS volumes (stand-alone, instance block devices, launch templates and
//! launch configurations) are encrypted.

use serde_json::{Map, Value};

use crate::nag::resolve::referenced_id;
use crate::nag::rules::{any_prop, field, items, verdict};
use crate::nag::{ByValue, CheckResult, Compliance, Level, Resource, Rule, Unresolved};

/// cdk-nag `EC2EBSVolumeEncrypted`.
pub const EC2_EBS_VOLUME_ENCRYPTED: Rule = Rule {
    id: "AwsSolutions-EC26",
    name: "EC2EBSVolumeEncrypted",
    level: Level::Error,
    info: "An EBS volume created by this resource is not encrypted.",
    explanation: "EBS encryption protects volumes, their snapshots and the data moving to the instance, with keys managed by KMS. \
Set `Encrypted: true` on every volume and every block device mapping (of the instance, its launch template, or the launch configuration).",
    check: Some(check),
};

#[derive(Debug, PartialEq, Eq)]
enum Devices {
    Absent,
    Encrypted,
    Unencrypted,
}

fn devices<'a>(
    res: &Resource<'a>,
    mappings: Option<&'a Value>,
    path: &str,
) -> Result<Devices, Unresolved> {
    let mappings = items(res, mappings, path)?;
    if mappings.is_empty() {
        return Ok(Devices::Absent);
    }
    let mut n_ebs = 0;
    for (item_path, mapping) in mappings {
        // An instance-store (`VirtualName`) or removed (`NoDevice`) device is no EBS volume.
        if !mapping.contains_key("Ebs")
            && (mapping.contains_key("VirtualName") || mapping.contains_key("NoDevice"))
        {
            continue;
        }
        n_ebs += 1;
        let ebs_path = format!("{item_path}.Ebs");
        for ebs in res.objects(mapping.get("Ebs"), &ebs_path)? {
            let encrypted = field(res, ebs, "Encrypted", &ebs_path)?;
            if encrypted
                .into_iter()
                .any(|value| value.and_then(|flag| flag.as_bool()) != Some(true))
            {
                return Ok(Devices::Unencrypted);
            }
        }
    }
    Ok(if n_ebs == 0 {
        Devices::Absent
    } else {
        Devices::Encrypted
    })
}

/// The launch template resource a `LaunchTemplate` property points at, by name or by id.
fn launch_template<'a>(
    res: &Resource<'a>,
    spec: Option<&'a Map<String, Value>>,
) -> Option<Resource<'a>> {
    let spec = spec?;
    let by_name = spec.get("LaunchTemplateName");
    let by_id = spec.get("LaunchTemplateId").and_then(referenced_id);
    const LAUNCH_TEMPLATE: &str = "AWS::EC2::LaunchTemplate";
    if let Some(found) = by_id
        .and_then(|id| res.lookup(id))
        .filter(|found| found.resource_type == LAUNCH_TEMPLATE)
    {
        return Some(found);
    }
    let name = by_name?;
    res.others_with_value(ByValue::LaunchTemplateName, name)
        .find(|candidate| candidate.prop("LaunchTemplateName") == Some(name))
}

fn template_devices(template: &Resource<'_>) -> Result<Devices, Unresolved> {
    let mut worst = Devices::Encrypted;
    for data in template.objects(template.prop("LaunchTemplateData"), "LaunchTemplateData")? {
        let state = devices(
            template,
            data.and_then(|data| data.get("BlockDeviceMappings")),
            "LaunchTemplateData.BlockDeviceMappings",
        )?;
        if state != Devices::Encrypted {
            worst = state;
        }
    }
    Ok(worst)
}

fn check(res: &Resource<'_>) -> CheckResult {
    match res.resource_type {
        "AWS::EC2::Volume" => any_prop(res, "Encrypted", |value| {
            value.and_then(|flag| flag.as_bool()) != Some(true)
        }),
        "AWS::EC2::Instance" => {
            let own = devices(res, res.prop("BlockDeviceMappings"), "BlockDeviceMappings")?;
            for spec in res.objects(res.prop("LaunchTemplate"), "LaunchTemplate")? {
                if let Some(template) = launch_template(res, spec) {
                    let from_template = template_devices(&template)?;
                    let bad = (own == Devices::Absent && from_template == Devices::Absent)
                        || own == Devices::Unencrypted
                        || from_template == Devices::Unencrypted;
                    return verdict(bad);
                }
            }
            verdict(own != Devices::Encrypted)
        }
        "AWS::AutoScaling::LaunchConfiguration" => verdict(
            devices(res, res.prop("BlockDeviceMappings"), "BlockDeviceMappings")?
                != Devices::Encrypted,
        ),
        "AWS::AutoScaling::AutoScalingGroup" => {
            for spec in res.objects(res.prop("LaunchTemplate"), "LaunchTemplate")? {
                if let Some(template) = launch_template(res, spec) {
                    return verdict(template_devices(&template)? != Devices::Encrypted);
                }
            }
            Ok(Compliance::NotApplicable)
        }
        _ => Ok(Compliance::NotApplicable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nag::testing::{assert_suppressible, status};

    const LT: &str = "LT: {Type: AWS::EC2::LaunchTemplate, Properties: {LaunchTemplateName: lt, LaunchTemplateData: {BlockDeviceMappings: [{DeviceName: /dev/xvda, Ebs: {Encrypted: ENC}}]}}}";

    fn tpl(resource: &str, encrypted: &str) -> String {
        format!(
            "Conditions: {{C: !Equals [a, b]}}\nResources: {{R: {resource}, {}}}",
            LT.replace("ENC", encrypted)
        )
    }

    #[test]
    fn volumes() {
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::EC2::Volume, Properties: {Encrypted: true}}",
                    "true"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl("{Type: AWS::EC2::Volume, Properties: {}}", "true"),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::EC2::Volume, Properties: {Encrypted: !If [C, true, false]}}",
                    "true"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "non-compliant"
        );
        assert_suppressible(
            &tpl("{Type: AWS::EC2::Volume, Properties: {}}", "true"),
            "AwsSolutions-EC26",
        );
    }

    #[test]
    fn instances() {
        let own = |enc: &str| {
            format!(
                "{{Type: AWS::EC2::Instance, Properties: {{BlockDeviceMappings: [{{DeviceName: /dev/sda1, Ebs: {{Encrypted: {enc}}}}}]}}}}"
            )
        };
        assert_eq!(
            status(&tpl(&own("true"), "true"), &EC2_EBS_VOLUME_ENCRYPTED),
            "compliant"
        );
        assert_eq!(
            status(&tpl(&own("false"), "true"), &EC2_EBS_VOLUME_ENCRYPTED),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl("{Type: AWS::EC2::Instance, Properties: {}}", "true"),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::EC2::Instance, Properties: {LaunchTemplate: {LaunchTemplateId: !Ref LT}}}",
                    "true"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::EC2::Instance, Properties: {LaunchTemplate: {LaunchTemplateName: lt}}}",
                    "false"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(&own("!GetAtt K.Enc"), "true"),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "unresolved: BlockDeviceMappings[0].Ebs.Encrypted"
        );
    }

    #[test]
    fn auto_scaling() {
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::AutoScaling::LaunchConfiguration, Properties: {BlockDeviceMappings: [{DeviceName: a, Ebs: {Encrypted: true}}]}}",
                    "true"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::AutoScaling::LaunchConfiguration, Properties: {}}",
                    "true"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::AutoScaling::AutoScalingGroup, Properties: {LaunchTemplate: {LaunchTemplateId: !Ref LT}}}",
                    "true"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::AutoScaling::AutoScalingGroup, Properties: {LaunchTemplate: {LaunchTemplateId: !Ref LT}}}",
                    "false"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "non-compliant"
        );
        assert_eq!(
            status(
                &tpl(
                    "{Type: AWS::AutoScaling::AutoScalingGroup, Properties: {}}",
                    "false"
                ),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "n/a"
        );
        assert_eq!(
            status(
                &tpl("{Type: AWS::S3::Bucket}", "false"),
                &EC2_EBS_VOLUME_ENCRYPTED
            ),
            "n/a"
        );
    }

    /// Instance-store (`VirtualName`) devices were reported as unencrypted EBS volumes.
    #[test]
    fn regression_instance_store_devices_are_not_ebs_volumes() {
        let config = |mappings: &str| {
            tpl(
                &format!(
                    "{{Type: AWS::AutoScaling::LaunchConfiguration, Properties: {{BlockDeviceMappings: [{mappings}]}}}}"
                ),
                "true",
            )
        };
        let check = |mappings: &str| status(&config(mappings), &EC2_EBS_VOLUME_ENCRYPTED);
        assert_eq!(
            check(
                "{DeviceName: a, Ebs: {Encrypted: true}}, {DeviceName: b, VirtualName: ephemeral0}, {DeviceName: c, NoDevice: {}}"
            ),
            "compliant"
        );
        assert_eq!(
            check("{DeviceName: b, VirtualName: ephemeral0}"),
            "non-compliant"
        );
        assert_eq!(
            check("{DeviceName: a, Ebs: {}}, {DeviceName: b, VirtualName: ephemeral0}"),
            "non-compliant"
        );
        assert_eq!(check("{DeviceName: a}"), "non-compliant");
    }
}
