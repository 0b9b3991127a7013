//! `DEPLOY_KMS_KEY`: with a key, every log group, secret, store table and Studio domain uses
//! it, the key policy grants exactly CloudWatch Logs and the account's use through the store,
//! secrets and Studio services, and the app's roles may use only that key; without one,
//! nothing names a key.

use serde_json::{Value as Json, json};
use stacks::StackConfig;
use stacks::config::KmsKey;

use crate::helpers::synth;

const OWN_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// `(stack, id, resource)` of every resource of `cfg`'s stacks.
fn resources(cfg: &StackConfig) -> Vec<(String, String, Json)> {
    let mut out = Vec::new();
    for stack in synth(cfg) {
        let json = stack.template.to_json_value();
        for (id, resource) in json["Resources"].as_object().into_iter().flatten() {
            out.push((
                stack.kind.short_name().to_owned(),
                id.clone(),
                resource.clone(),
            ));
        }
    }
    out
}

/// Where each encrypted type names its key.
fn key_property(resource: &Json) -> Option<&Json> {
    let props = &resource["Properties"];
    match resource["Type"].as_str()? {
        "AWS::Logs::LogGroup" | "AWS::SecretsManager::Secret" | "AWS::SageMaker::Domain" => {
            Some(&props["KmsKeyId"])
        }
        "AWS::DynamoDB::Table" => Some(&props["SSESpecification"]["KMSMasterKeyId"]),
        _ => None,
    }
}

fn check_every_encrypted_resource(cfg: &StackConfig, expected: &Json) {
    let mut seen = Vec::new();
    for (stack, id, resource) in resources(cfg) {
        if let Some(key) = key_property(&resource) {
            assert_eq!(key, expected, "{stack} {id}");
            seen.push(resource["Type"].as_str().unwrap_or_default().to_owned());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "AWS::DynamoDB::Table",
            "AWS::Logs::LogGroup",
            "AWS::SageMaker::Domain",
            "AWS::SecretsManager::Secret"
        ]
    );
}

#[test]
fn created_key_is_used_everywhere_through_the_network_export() {
    let cfg = StackConfig {
        kms_key: KmsKey::Create,
        ..StackConfig::default()
    };
    let stacks = synth(&cfg);
    let network = stacks
        .iter()
        .find(|s| s.kind.short_name() == "network")
        .unwrap()
        .template
        .to_json_value();
    // The network's own flow log group uses the key directly, the others through the export.
    assert_eq!(
        network["Resources"]["FlowLogGroup"]["Properties"]["KmsKeyId"],
        json!({"Fn::GetAtt": ["EncryptionKey", "Arn"]})
    );
    assert_eq!(
        network["Outputs"]["KmsKeyArn"]["Export"]["Name"],
        "llm-eval-network-KmsKeyArn"
    );
    let import = json!({"Fn::ImportValue": "llm-eval-network-KmsKeyArn"});
    for (stack, id, resource) in resources(&cfg) {
        if let Some(key) = key_property(&resource)
            && stack != "network"
        {
            assert_eq!(key, &import, "{stack} {id}");
        }
    }
    let key = &network["Resources"]["EncryptionKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    // The retained table stays readable only with its key.
    assert_eq!(key["DeletionPolicy"], "Retain");
    assert_eq!(key["UpdateReplacePolicy"], "Retain");
}

#[test]
fn existing_key_is_used_everywhere_and_not_created() {
    let cfg = StackConfig {
        kms_key: KmsKey::Existing(OWN_KEY.into()),
        ..StackConfig::default()
    };
    check_every_encrypted_resource(&cfg, &json!(OWN_KEY));
    for (stack, id, resource) in resources(&cfg) {
        assert_ne!(resource["Type"], "AWS::KMS::Key", "{stack} {id}");
    }
}

#[test]
fn without_a_key_nothing_names_one() {
    for (stack, id, resource) in resources(&StackConfig::default()) {
        assert_ne!(resource["Type"], "AWS::KMS::Key", "{stack} {id}");
        if let Some(key) = key_property(&resource) {
            assert_eq!(key, &Json::Null, "{stack} {id}");
        }
    }
}

#[test]
fn key_policy_grants_exactly_logs_and_the_services() {
    let policy = serde_json::to_value(stacks::stacks::kms::key_policy()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 3);
    let root = json!({"AWS": [{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}]});
    // Administration only: the account cannot decrypt except through the services.
    let admin = &statements[0];
    assert_eq!(admin["Principal"], root);
    for action in admin["Action"].as_array().unwrap() {
        let action = action.as_str().unwrap();
        for crypto in [
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:ReEncrypt",
            "kms:CreateGrant",
            "kms:Create*",
            "kms:*",
        ] {
            assert!(!action.starts_with(crypto), "{action}");
        }
    }
    let logs = &statements[1];
    assert_eq!(
        logs["Principal"],
        json!({"Service": [{"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}]})
    );
    assert_eq!(
        logs["Condition"],
        json!({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": {
            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
        }}})
    );
    let services = &statements[2];
    assert_eq!(services["Principal"], root);
    assert_eq!(
        services["Condition"]["StringEquals"]["kms:ViaService"],
        json!([
            {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"},
            {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
            {"Fn::Sub": "sagemaker.${AWS::Region}.amazonaws.com"},
            {"Fn::Sub": "elasticfilesystem.${AWS::Region}.amazonaws.com"},
        ])
    );
    assert_eq!(
        services["Condition"]["StringEquals"]["kms:CallerAccount"],
        json!({"Ref": "AWS::AccountId"})
    );
}

#[test]
fn app_roles_use_only_the_key() {
    let cfg = StackConfig {
        kms_key: KmsKey::Existing(OWN_KEY.into()),
        ..StackConfig::default()
    };
    let app = synth(&cfg)
        .into_iter()
        .find(|s| s.kind.short_name() == "app")
        .unwrap()
        .template
        .to_json_value();
    let key_statement = |role: &str| -> Json {
        app["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|statement| statement["Sid"] == "UseCustomerManagedKey")
            .cloned()
            .unwrap_or_else(|| panic!("{role} has no key statement"))
    };
    let task = key_statement("TaskRole");
    assert_eq!(task["Resource"], json!([OWN_KEY]));
    assert_eq!(task["Action"], json!(stacks::stacks::app::KEY_ACTIONS));
    let execution = key_statement("TaskExecutionRole");
    assert_eq!(execution["Resource"], json!([OWN_KEY]));
    assert_eq!(execution["Action"], json!(["kms:Decrypt"]));
}
