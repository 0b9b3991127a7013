//! The nag pack end to end: never panics on arbitrary input, JSON and YAML forms agree.

use proptest::prelude::*;
use stacks::nag::{check_template, parse_template, report};

/// Parses and checks; returns the number of findings, or the error message.
fn run(text: &str) -> Result<usize, String> {
    let parsed = parse_template("input", text).map_err(|error| error.to_string())?;
    let findings = check_template(&parsed);
    let filter = report::Filter {
        min_level: stacks::nag::Level::Warning,
        verbose: true,
    };
    let _ = report::text(&findings, filter);
    let _ = report::sarif(&findings, &[], filter);
    Ok(findings.len())
}

/// Arbitrary JSON-like trees whose keys and strings lean towards CloudFormation vocabulary,
/// so generated inputs often get past parsing and into the rules.
fn arb_value() -> impl Strategy<Value = serde_json::Value> {
    let words = prop::sample::select(vec![
        "Ref",
        "Fn::If",
        "Fn::GetAtt",
        "Fn::Sub",
        "Fn::Join",
        "AWS::NoValue",
        "Type",
        "Properties",
        "Metadata",
        "cdk_nag",
        "rules_to_suppress",
        "id",
        "reason",
        "applies_to",
        "regex",
        "Statement",
        "Effect",
        "Allow",
        "Deny",
        "Action",
        "Resource",
        "SecurityGroupIngress",
        "CidrIp",
        "0.0.0.0/0",
        "AWS::EC2::SecurityGroup",
        "AWS::S3::Bucket",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "Policies",
        "PolicyDocument",
        "AWS::CloudFront::Distribution",
        "DistributionConfig",
        "Origins",
        "AWS::ECS::TaskDefinition",
        "ContainerDefinitions",
        "AWS::Lambda::Function",
        "Runtime",
        "P",
        "R",
        "*",
        "/(",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        words
            .clone()
            .prop_map(|word| serde_json::Value::String(word.to_owned())),
        ".{0,8}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec((words.clone(), inner), 0..4).prop_map(|entries| {
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect(),
                )
            }),
        ]
    })
}

fn arb_template() -> impl Strategy<Value = serde_json::Value> {
    (prop::collection::vec((prop::sample::select(vec!["R", "P", "Bucket", "Role"]), arb_value()), 0..5), arb_value(), arb_value())
        .prop_map(|(resources, parameters, metadata)| {
            let resources: serde_json::Map<String, serde_json::Value> =
                resources.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
            serde_json::json!({"Parameters": parameters, "Metadata": metadata, "Resources": resources})
        })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = run(&text);
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(text in "(Resources:|  R:|    Type: |!Ref |!GetAtt |!If |\\[|\\]|\\{|\\}|, |: |\n|x|0\\.0\\.0\\.0/0|AWS::S3::Bucket|- ){0,40}") {
        let _ = run(&text);
    }

    #[test]
    fn arbitrary_json_like_text_never_panics(text in "\\{(\"|\\\\|Resources|Fn::ForEach::L|: |\\{|\\}|\\[|\\]|\n|x|é|, ){0,60}") {
        let _ = run(&text);
    }

    #[test]
    fn arbitrary_templates_never_panic_and_formats_agree(template in arb_template()) {
        let json_text = template.to_string();
        let yaml_text = serde_yaml::to_string(&template).expect("json values serialize as yaml");
        let from_json = run(&json_text);
        let from_yaml = run(&yaml_text);
        // The same tree written as JSON or YAML gives the same number of findings.
        if let (Ok(from_json), Ok(from_yaml)) = (&from_json, &from_yaml) {
            prop_assert_eq!(from_json, from_yaml);
        }
    }
}

#[test]
fn short_and_long_forms_give_the_same_findings() {
    let short = "Parameters: {P: {Type: String}}\nConditions: {C: !Equals [a, b]}\nResources:\n  R:\n    Type: AWS::EC2::SecurityGroup\n    Properties:\n      GroupDescription: !Sub '${AWS::StackName} sg'\n      SecurityGroupIngress:\n        - !If [C, {CidrIp: 0.0.0.0/0}, {CidrIp: !Ref P}]\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      Policies:\n        - PolicyName: p\n          PolicyDocument: {Statement: [{Effect: Allow, Action: 's3:*', Resource: !GetAtt Bucket.Arn}]}\n";
    let long = r#"{"Parameters": {"P": {"Type": "String"}}, "Conditions": {"C": {"Fn::Equals": ["a", "b"]}},
      "Resources": {
        "R": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
          "GroupDescription": {"Fn::Sub": "${AWS::StackName} sg"},
          "SecurityGroupIngress": [{"Fn::If": ["C", {"CidrIp": "0.0.0.0/0"}, {"CidrIp": {"Ref": "P"}}]}]}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyName": "p",
          "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}}]}}]}}}}"#;
    let ids = |text: &str| -> Vec<String> {
        let parsed = parse_template("t", text).expect("valid template");
        check_template(&parsed)
            .into_iter()
            .map(|finding| format!("{} {}", finding.logical_id, finding.rule_id))
            .collect()
    };
    let from_short = ids(short);
    assert_eq!(from_short, ids(long));
    assert!(
        from_short.contains(&"R AwsSolutions-EC27".to_owned()),
        "{from_short:?}"
    );
    assert!(
        from_short.contains(&"Role AwsSolutions-IAM5[Action::s3:*]".to_owned()),
        "{from_short:?}"
    );
}

/// Every synthesized template of every toggle combination passes the pack: no unsuppressed
/// error or warning, and every suppression is used (a stale one would hide nothing and rot).
#[test]
fn our_stacks_pass_the_pack_in_every_combination() {
    let mut n_suppressed = 0;
    for cfg in stacks::StackConfig::default().toggle_combinations() {
        for stack in crate::helpers::synth(&cfg) {
            let file = format!("{}/{}", cfg.toggle_label(), stack.name);
            let text = String::from_utf8(stack.template.to_json_bytes()).unwrap();
            let parsed = parse_template(&file, &text).unwrap();
            let findings = check_template(&parsed);
            let open: Vec<String> = findings
                .iter()
                .filter(|finding| finding.suppressed.is_none())
                .map(|finding| format!("{file}: {} {}", finding.logical_id, finding.rule_id))
                .collect();
            assert!(
                open.is_empty(),
                "unsuppressed findings:\n{}",
                open.join("\n")
            );
            n_suppressed += findings.len();
            for (logical_id, body) in parsed.resources() {
                let suppressions = body
                    .get("Metadata")
                    .and_then(|metadata| metadata.pointer("/cdk_nag/rules_to_suppress"))
                    .and_then(serde_json::Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for suppression in suppressions {
                    let id = suppression["id"].as_str().unwrap();
                    let used = findings
                        .iter()
                        .any(|finding| finding.logical_id == logical_id && finding.base_id == id);
                    assert!(
                        used,
                        "{file}: suppression of {id} on {logical_id} matches no finding"
                    );
                }
            }
        }
    }
    assert!(
        n_suppressed > 0,
        "the accepted findings are reported as suppressed"
    );
}

/// The report over our stacks (default configuration), suppressed findings and reasons
/// included: a reviewed record of every accepted finding.
#[test]
fn report_of_our_stacks() {
    let mut findings = Vec::new();
    for stack in crate::helpers::synth(&stacks::StackConfig::default()) {
        let text = String::from_utf8(stack.template.to_json_bytes()).unwrap();
        let parsed = parse_template(&format!("{}.template.json", stack.name), &text).unwrap();
        findings.extend(check_template(&parsed));
    }
    let filter = report::Filter {
        min_level: stacks::nag::Level::Warning,
        verbose: false,
    };
    let mut json = report::json(&findings, &[], filter);
    // Positions move with every template edit; the snapshot records what and why, not where.
    for finding in json["findings"].as_array_mut().unwrap() {
        let finding = finding.as_object_mut().unwrap();
        finding.remove("line");
        finding.remove("column");
    }
    insta::assert_json_snapshot!("nag_report_default", json);
}

/// Our templates rendered as YAML give exactly the findings of their JSON rendering.
#[test]
fn yaml_and_json_renderings_of_our_stacks_agree() {
    for stack in crate::helpers::synth(&stacks::StackConfig::default()) {
        let json = String::from_utf8(stack.template.to_json_bytes()).unwrap();
        let yaml = String::from_utf8(stack.template.to_yaml_bytes().unwrap()).unwrap();
        let summary = |text: &str| -> Vec<String> {
            let parsed = parse_template(&stack.name, text).unwrap();
            check_template(&parsed)
                .into_iter()
                .map(|finding| {
                    format!(
                        "{} {} {:?}",
                        finding.logical_id, finding.rule_id, finding.suppressed
                    )
                })
                .collect()
        };
        let from_json = summary(&json);
        assert!(
            !from_json.is_empty()
                || stack.name.ends_with("network")
                || stack.name.ends_with("toolkit"),
            "{}",
            stack.name
        );
        assert_eq!(from_json, summary(&yaml), "{}", stack.name);
    }
}
