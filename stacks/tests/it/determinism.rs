//! Synthesizing twice gives byte-identical JSON and YAML, for every toggle combination.

use stacks::StackConfig;

use crate::helpers::{of_kind, synth};

#[test]
fn synth_twice_is_byte_identical() {
    for cfg in StackConfig::default().toggle_combinations() {
        let first = synth(&cfg);
        let second = synth(&cfg);
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(
                a.template.to_json_bytes(),
                b.template.to_json_bytes(),
                "{}",
                a.name
            );
            assert_eq!(
                a.template.to_yaml_bytes().unwrap(),
                b.template.to_yaml_bytes().unwrap(),
                "{}",
                a.name
            );
        }
    }
}

#[test]
fn yaml_and_json_carry_the_same_template() {
    for stack in synth(&StackConfig::default()) {
        let from_yaml: serde_json::Value =
            serde_yaml::from_slice(&stack.template.to_yaml_bytes().unwrap()).unwrap();
        let mut expected = stack.template.to_json_value();
        // YAML reads the unquoted version date as a string too; compare everything.
        expected["AWSTemplateFormatVersion"] = "2010-09-09".into();
        assert_eq!(from_yaml, expected, "{}", stack.name);
    }
}

#[test]
fn nag_toggle_does_not_change_templates() {
    let off = synth(&StackConfig {
        cdk_nag: false,
        ..StackConfig::default()
    });
    let on = synth(&StackConfig {
        cdk_nag: true,
        ..StackConfig::default()
    });
    for (a, b) in off.iter().zip(&on) {
        assert_eq!(
            a.template.to_json_bytes(),
            b.template.to_json_bytes(),
            "{}",
            a.name
        );
    }
}

#[test]
fn prefix_changes_names_not_structure() {
    let stacks = synth(&StackConfig {
        prefix: "demo".into(),
        ..StackConfig::default()
    });
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["demo-toolkit", "demo-network", "demo-app", "demo-studio"]
    );
    let app = of_kind(&stacks, "app").template.to_json_value().to_string();
    assert!(
        app.contains("demo-network-VpcId") && !app.contains("llm-eval-network"),
        "{app}"
    );
}
