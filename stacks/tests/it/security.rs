//! Security invariants of the synthesized stacks, checked over every toggle combination.

use serde_json::Value as Json;
use stacks::StackConfig;

use crate::helpers::{all_resources, default_stack, of_kind, synth};

/// All `(stack, id, property path, value)` leaves whose key is `key`.
fn find_key<'a>(value: &'a Json, key: &str, path: String, out: &mut Vec<(String, &'a Json)>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                let sub = format!("{path}.{k}");
                if k == key {
                    out.push((sub.clone(), v));
                }
                find_key(v, key, sub, out);
            }
        }
        Json::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                find_key(item, key, format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_ingress_from_anywhere() {
    for (stack, id, resource) in all_resources() {
        let mut hits = Vec::new();
        find_key(&resource, "SecurityGroupIngress", String::new(), &mut hits);
        let is_ingress_resource = resource["Type"] == "AWS::EC2::SecurityGroupIngress";
        let mut cidrs = Vec::new();
        for (path, rules) in &hits {
            find_key(rules, "CidrIp", path.clone(), &mut cidrs);
        }
        if is_ingress_resource {
            find_key(&resource["Properties"], "CidrIp", String::new(), &mut cidrs);
        }
        for (path, cidr) in cidrs {
            assert_ne!(cidr, "0.0.0.0/0", "{stack} {id}{path}");
        }
    }
}

#[test]
fn load_balancer_is_internal() {
    for (stack, id, resource) in all_resources() {
        if resource["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer" {
            assert_eq!(resource["Properties"]["Scheme"], "internal", "{stack} {id}");
        }
    }
}

#[test]
fn the_batch_role_is_bedrocks_alone_and_reaches_only_the_batch_prefix() {
    let app = default_stack("app").template.to_json_value();
    let role = &app["Resources"]["BatchServiceRole"]["Properties"];
    let trust = &role["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(
        trust["Principal"],
        serde_json::json!({"Service": ["bedrock.amazonaws.com"]})
    );
    assert_eq!(
        trust["Condition"],
        serde_json::json!({
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
            "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*"}},
        })
    );
    let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let objects = statements
        .iter()
        .find(|s| s["Sid"] == "BatchObjects")
        .unwrap();
    assert_eq!(
        objects["Resource"],
        serde_json::json!([{"Fn::Sub": "${DataBucket.Arn}/llm-eval-batch/*"}])
    );
    let list = statements
        .iter()
        .find(|s| s["Sid"] == "ListBatchPrefix")
        .unwrap();
    assert_eq!(
        list["Condition"],
        serde_json::json!({"StringLike": {"s3:prefix": ["llm-eval-batch/*"]}})
    );
    // The task role passes it to Bedrock only.
    let task =
        &app["Resources"]["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let pass = task
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "PassBatchRole")
        .unwrap();
    assert_eq!(
        pass["Resource"],
        serde_json::json!([{"Fn::GetAtt": ["BatchServiceRole", "Arn"]}])
    );
    assert_eq!(
        pass["Condition"],
        serde_json::json!({"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}})
    );
    // Its objects expire (30 days by default).
    let rules = &app["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
    let expiry = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["Id"] == "expire-batch-objects")
        .unwrap();
    assert_eq!(expiry["Prefix"], "llm-eval-batch/");
    assert_eq!(expiry["ExpirationInDays"], 30);
}

#[test]
fn task_role_has_exactly_the_listed_actions() {
    let app = default_stack("app").template.to_json_value();
    let statements =
        app["Resources"]["TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
    let mut actions: Vec<&str> = statements
        .iter()
        .flat_map(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
        })
        .collect();
    // An action may appear in two statements (CreateModelInvocationJob is authorized on the job
    // and on the model it names): the set of actions is what is checked.
    actions.sort_unstable();
    actions.dedup();
    assert_eq!(
        actions,
        [
            "bedrock:CreateModelInvocationJob",
            "bedrock:GetModelInvocationJob",
            "bedrock:InvokeModel",
            "bedrock:InvokeModelWithResponseStream",
            "bedrock:ListFoundationModels",
            "bedrock:ListModelInvocationJobs",
            "bedrock:StopModelInvocationJob",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:DeleteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "iam:PassRole",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "sagemaker:InvokeEndpoint",
            "sagemaker:ListEndpoints",
            "secretsmanager:GetSecretValue",
        ]
    );
    // The store's table actions name the table and its two indexes, nothing else.
    let store = statements.iter().find(|s| s["Sid"] == "Store").unwrap();
    assert_eq!(
        store["Resource"],
        serde_json::json!([
            {"Fn::GetAtt": ["StoreTable", "Arn"]},
            {"Fn::Sub": ["${Table}/index/by_created", {"Table": {"Fn::GetAtt": ["StoreTable", "Arn"]}}]},
            {"Fn::Sub": ["${Table}/index/running", {"Table": {"Fn::GetAtt": ["StoreTable", "Arn"]}}]},
        ])
    );
    let objects = statements
        .iter()
        .find(|s| s["Sid"] == "DataObjects")
        .unwrap();
    assert_eq!(
        objects["Resource"],
        serde_json::json!([{"Fn::Sub": "${DataBucket.Arn}/*"}])
    );
    let secret = statements
        .iter()
        .find(|s| s["Sid"] == "ReadOpenAiKey")
        .unwrap();
    assert_eq!(
        secret["Resource"],
        serde_json::json!([{"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:openai_key-??????"}])
    );
}

#[test]
fn openai_secret_name_is_configurable() {
    let cfg = StackConfig {
        openai_secret_name: "team/openai".into(),
        ..StackConfig::default()
    };
    let app = of_kind(&synth(&cfg), "app")
        .template
        .to_json_value()
        .to_string();
    assert!(app.contains("secret:team/openai-??????"), "{app}");
    assert!(
        app.contains(r#""Name":"OPENAI_SECRET_NAME","Value":"team/openai""#),
        "{app}"
    );
}

#[test]
fn client_secret_only_reaches_secrets_manager() {
    let app = default_stack("app").template.to_json_value();
    let text = app.to_string();
    // The only place that reads the client secret is the Secrets Manager secret's value.
    let read = r#"["UserPoolClient","ClientSecret"]"#;
    assert_eq!(text.matches(read).count(), 1, "{text}");
    assert!(
        app["Resources"]["CognitoClientSecret"]["Properties"]["SecretString"]
            .to_string()
            .contains(read)
    );
    let container = &app["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0];
    assert_eq!(container["Secrets"][0]["Name"], "COGNITO_CLIENT_SECRET");
}

#[test]
fn buckets_are_encrypted_private_and_tls_only() {
    for (stack, id, resource) in all_resources() {
        if resource["Type"] == "AWS::S3::Bucket" {
            let props = &resource["Properties"];
            assert!(props["BucketEncryption"].is_object(), "{stack} {id}");
            assert_eq!(
                props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"], true,
                "{stack} {id}"
            );
        }
        if resource["Type"] == "AWS::S3::BucketPolicy" {
            let statements = resource["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap();
            assert!(
                statements.iter().any(|s| s["Effect"] == "Deny"
                    && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
                "{stack} {id}"
            );
        }
    }
    let app = default_stack("app").template.to_json_value();
    assert_eq!(
        app["Resources"]["DataBucket"]["Properties"]["VersioningConfiguration"]["Status"],
        "Enabled"
    );
}

#[test]
fn alb_writes_access_logs_to_the_logs_bucket() {
    use stacks::stacks::app::{ALB_LOG_PREFIX, ELB_LOG_DELIVERY};

    assert!(!ALB_LOG_PREFIX.contains("AWSLogs") && !ALB_LOG_PREFIX.starts_with('/'));
    for cfg in StackConfig::default().toggle_combinations() {
        let Some(app) = synth(&cfg)
            .into_iter()
            .find(|stack| stack.kind.short_name() == "app")
        else {
            continue;
        };
        let label = cfg.toggle_label();
        let app = app.template.to_json_value();
        let resources = &app["Resources"];
        let alb = &resources["LoadBalancer"];
        let attributes = alb["Properties"]["LoadBalancerAttributes"]
            .as_array()
            .unwrap();
        let attribute = |key: &str| {
            attributes
                .iter()
                .find(|attribute| attribute["Key"] == key)
                .map(|attribute| attribute["Value"].clone())
        };
        assert_eq!(
            attribute("access_logs.s3.enabled"),
            Some("true".into()),
            "{label}"
        );
        assert_eq!(
            attribute("access_logs.s3.bucket"),
            Some(serde_json::json!({"Ref": "LogsBucket"})),
            "{label}"
        );
        assert_eq!(
            attribute("access_logs.s3.prefix"),
            Some(ALB_LOG_PREFIX.into()),
            "{label}"
        );
        // ELB checks write access when the attribute is set: the policy must exist first.
        assert_eq!(
            alb["DependsOn"],
            serde_json::json!(["LogsBucketPolicy"]),
            "{label}"
        );
        // ELB log delivery supports SSE-S3 only.
        assert_eq!(
            resources["LogsBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                [0]["ServerSideEncryptionByDefault"],
            serde_json::json!({"SSEAlgorithm": "AES256"}),
            "{label}"
        );
        let statements = resources["LogsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap();
        let delivery: Vec<&Json> = statements
            .iter()
            .filter(|statement| statement["Principal"]["Service"][0] == ELB_LOG_DELIVERY)
            .collect();
        assert_eq!(delivery.len(), 1, "{label}");
        assert_eq!(delivery[0]["Effect"], "Allow", "{label}");
        assert_eq!(
            delivery[0]["Action"],
            serde_json::json!(["s3:PutObject"]),
            "{label}"
        );
        // Only objects under this account's log path, never a wildcard account.
        assert_eq!(
            delivery[0]["Resource"],
            serde_json::json!([{"Fn::Join": ["", [
                {"Fn::GetAtt": ["LogsBucket", "Arn"]},
                format!("/{ALB_LOG_PREFIX}/AWSLogs/"),
                {"Ref": "AWS::AccountId"},
                "/*"
            ]]}]),
            "{label}"
        );
    }
}

#[test]
fn task_is_right_sized_non_root_and_health_checked() {
    let app = default_stack("app").template.to_json_value();
    let task = &app["Resources"]["TaskDefinition"]["Properties"];
    assert_eq!(
        (task["Cpu"].as_str(), task["Memory"].as_str()),
        (Some("512"), Some("1024"))
    );
    assert_eq!(task["ContainerDefinitions"][0]["User"], "10001:10001");
    assert_eq!(
        app["Resources"]["TargetGroup"]["Properties"]["HealthCheckPath"],
        "/healthz"
    );
    assert_eq!(
        app["Resources"]["AppLogGroup"]["Properties"]["RetentionInDays"],
        30
    );
    assert_eq!(
        app["Resources"]["Cluster"]["Properties"]["ClusterSettings"][0]["Value"],
        "enabled"
    );
    let image = &task["ContainerDefinitions"][0]["Image"];
    assert_eq!(image, &serde_json::json!({"Ref": "ImageUri"}));
}

#[test]
fn fargate_containers_carry_no_parameter_fargate_rejects() {
    // "Amazon ECS task definition differences for Fargate": not valid in Fargate tasks.
    const NOT_VALID_ON_FARGATE: &[&str] = &[
        "DisableNetworking",
        "DnsSearchDomains",
        "DnsServers",
        "DockerSecurityOptions",
        "ExtraHosts",
        "Gpu",
        "IpcMode",
        "Links",
        "PlacementConstraints",
        "Privileged",
        "MaxSwap",
        "Swappiness",
    ];
    for (stack, id, resource) in all_resources() {
        if resource["Type"] != "AWS::ECS::TaskDefinition" {
            continue;
        }
        assert_eq!(
            resource["Properties"]["RequiresCompatibilities"],
            serde_json::json!(["FARGATE"]),
            "{stack} {id}"
        );
        for key in NOT_VALID_ON_FARGATE {
            let mut hits = Vec::new();
            find_key(&resource["Properties"], key, String::new(), &mut hits);
            assert!(hits.is_empty(), "{stack} {id}: {hits:?}");
        }
    }
}

#[test]
fn cloudfront_is_https_uncached_and_reaches_the_alb_privately() {
    let app = default_stack("app").template.to_json_value();
    let config = &app["Resources"]["Distribution"]["Properties"]["DistributionConfig"];
    let behavior = &config["DefaultCacheBehavior"];
    assert_eq!(behavior["ViewerProtocolPolicy"], "redirect-to-https");
    assert_eq!(
        behavior["CachePolicyId"],
        "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    );
    assert_eq!(config["HttpVersion"], "http2and3");
    // Running: the load balancer through the VPC origin; paused: the placeholder (see below).
    assert_eq!(
        config["Origins"][0]["VpcOriginConfig"]["Fn::If"][0],
        "Running"
    );
    assert!(config["Origins"][0]["VpcOriginConfig"]["Fn::If"][1]["VpcOriginId"].is_object());
    assert!(config.get("Logging").is_none());
    let logged = synth(&StackConfig {
        cloudfront_access_logs: true,
        ..StackConfig::default()
    });
    let logged = of_kind(&logged, "app").template.to_json_value();
    assert_eq!(
        logged["Resources"]["Distribution"]["Properties"]["DistributionConfig"]["Logging"]["Prefix"],
        "cloudfront/"
    );
}

#[test]
fn custom_domain_needs_both_certificate_and_alias() {
    // With only one of the two, CloudFront would get `Aliases: [""]` or an empty certificate ARN.
    let app = default_stack("app").template.to_json_value();
    assert_eq!(
        app["Conditions"]["HasCustomDomain"],
        serde_json::json!({"Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainAlias"}, ""]}]}
        ]})
    );
    let config = &app["Resources"]["Distribution"]["Properties"]["DistributionConfig"];
    assert_eq!(config["Aliases"]["Fn::If"][0], "HasCustomDomain");
    assert_eq!(config["ViewerCertificate"]["Fn::If"][0], "HasCustomDomain");
}

#[test]
fn cognito_pool_is_locked_down() {
    let app = default_stack("app").template.to_json_value();
    let pool = &app["Resources"]["UserPool"]["Properties"];
    assert_eq!(
        pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        true
    );
    assert_eq!(pool["UserPoolAddOns"]["AdvancedSecurityMode"], "ENFORCED");
    assert_eq!(pool["MfaConfiguration"], "OPTIONAL");
    assert_eq!(pool["Policies"]["PasswordPolicy"]["MinimumLength"], 14);
    let client = &app["Resources"]["UserPoolClient"]["Properties"];
    assert_eq!(client["GenerateSecret"], true);
    assert_eq!(
        client["ExplicitAuthFlows"],
        serde_json::json!([
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH"
        ])
    );
}

#[test]
fn studio_clones_the_configured_repo_with_native_resources() {
    let cfg = StackConfig {
        studio_git_repo: "https://example.com/team/notebooks.git".into(),
        ..StackConfig::default()
    };
    let studio = synth(&cfg).pop().unwrap();
    assert_eq!(studio.kind.short_name(), "studio");
    let json = studio.template.to_json_value();
    let content = &json["Resources"]["CloneRepoLifecycleConfig"]["Properties"]["StudioLifecycleConfigContent"]
        ["Fn::Base64"];
    assert!(
        content
            .as_str()
            .unwrap()
            .contains("repo_url='https://example.com/team/notebooks.git'")
    );
    for (_, resource) in json["Resources"].as_object().unwrap() {
        let kind = resource["Type"].as_str().unwrap();
        assert!(
            !kind.starts_with("Custom::")
                && kind != "AWS::CloudFormation::CustomResource"
                && kind != "AWS::Lambda::Function",
            "{kind}"
        );
    }
    assert_eq!(json["Resources"]["Domain"]["Properties"]["AuthMode"], "IAM");
    // Content and name are create-only: a new repository must give a new name, or
    // CloudFormation cannot replace the custom-named resource on update.
    let name = |json: &Json| {
        json["Resources"]["CloneRepoLifecycleConfig"]["Properties"]["StudioLifecycleConfigName"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let default_json = default_stack("studio").template.to_json_value();
    assert!(
        name(&json).starts_with("llm-eval-clone-repo-"),
        "{}",
        name(&json)
    );
    assert_ne!(name(&json), name(&default_json));
    assert_eq!(
        name(&default_json),
        name(&default_stack("studio").template.to_json_value())
    );
    assert_eq!(
        json["Resources"]["SharedSpace"]["Properties"]["SpaceSharingSettings"]["SharingType"],
        "Shared"
    );
}

#[test]
fn cross_stack_imports_match_network_exports() {
    let stacks = synth(&StackConfig::default());
    let network = of_kind(&stacks, "network");
    let network_name = network.name.clone();
    let network = network.template.to_json_value();
    let exported: Vec<String> = network["Outputs"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|o| o["Export"]["Name"].as_str().map(str::to_owned))
        .collect();
    for stack in stacks
        .iter()
        .filter(|stack| ["app", "studio"].contains(&stack.kind.short_name()))
    {
        let json = stack.template.to_json_value();
        let mut imports = Vec::new();
        find_key(&json, "Fn::ImportValue", String::new(), &mut imports);
        assert!(!imports.is_empty(), "{}", stack.name);
        for (path, name) in imports {
            let name = name.as_str().unwrap();
            assert!(
                exported.iter().any(|e| e == name),
                "{} {path}: {name} is not exported",
                stack.name
            );
        }
        assert!(stack.depends_on.contains(&network_name), "{}", stack.name);
    }
}

#[test]
fn store_table_is_on_demand_recoverable_encrypted_protected_and_kept() {
    let app = default_stack("app").template.to_json_value();
    let table = &app["Resources"]["StoreTable"];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let props = &table["Properties"];
    assert_eq!(props["TableName"], "llm-eval-store");
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(props["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(props["DeletionProtectionEnabled"], true);
    assert_eq!(props["TimeToLiveSpecification"]["AttributeName"], "ttl");
    // The task is told where its store is.
    let env =
        app["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"]
            .as_array()
            .unwrap();
    let store = env
        .iter()
        .find(|kv| kv["Name"] == "LLM_EVAL_STORE")
        .unwrap();
    assert_eq!(
        store["Value"],
        serde_json::json!({"Fn::Sub": ["dynamodb:${Table}", {"Table": {"Ref": "StoreTable"}}]})
    );
}

#[test]
fn task_count_sets_the_desired_count_over_both_zones() {
    for count in [1, 2, 5] {
        let cfg = stacks::config::StackConfig {
            task_count: count,
            ..Default::default()
        };
        let stacks = crate::helpers::synth(&cfg);
        let app = crate::helpers::of_kind(&stacks, "app")
            .template
            .to_json_value();
        let service = &app["Resources"]["Service"]["Properties"];
        // No task while `deployer pause` holds the stack.
        assert_eq!(
            service["DesiredCount"],
            serde_json::json!({"Fn::If": ["Running", count, 0]})
        );
        assert_eq!(service["AvailabilityZoneRebalancing"], "ENABLED");
        let subnets = service["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
            .as_array()
            .unwrap();
        assert_eq!(subnets.len(), 2, "one private subnet per Availability Zone");
    }
}

fn network_of(cfg: &stacks::config::StackConfig) -> serde_json::Value {
    let stacks = crate::helpers::synth(cfg);
    crate::helpers::of_kind(&stacks, "network")
        .template
        .to_json_value()
}

#[test]
fn default_network_has_a_nat_gateway_per_zone_that_pause_removes() {
    let network = network_of(&stacks::config::StackConfig::default());
    let resources = &network["Resources"];
    for n in [1, 2] {
        for id in [
            format!("NatGateway{n}"),
            format!("NatEip{n}"),
            format!("PrivateDefaultRoute{n}"),
        ] {
            assert_eq!(resources[&id]["Condition"], "Running", "{id}");
        }
        assert_eq!(
            resources[format!("PrivateDefaultRoute{n}")]["Properties"]["NatGatewayId"],
            serde_json::json!({"Ref": format!("NatGateway{n}")})
        );
    }
    assert_eq!(network["Parameters"]["Paused"]["Default"], "false");
    assert_eq!(
        network["Conditions"]["Running"],
        serde_json::json!({"Fn::Equals": [{"Ref": "Paused"}, "false"]})
    );
    assert!(resources.get("S3Endpoint").is_none());
}

#[test]
fn lean_network_shares_one_nat_gateway_and_adds_free_gateway_endpoints() {
    let network = network_of(&stacks::config::StackConfig {
        lean_network: true,
        ..Default::default()
    });
    let resources = &network["Resources"];
    assert!(resources.get("NatGateway2").is_none());
    assert!(resources.get("NatEip2").is_none());
    for n in [1, 2] {
        assert_eq!(
            resources[format!("PrivateDefaultRoute{n}")]["Properties"]["NatGatewayId"],
            serde_json::json!({"Ref": "NatGateway1"})
        );
    }
    for (id, service) in [("S3Endpoint", "s3"), ("DynamoDbEndpoint", "dynamodb")] {
        let endpoint = &resources[id]["Properties"];
        assert_eq!(endpoint["VpcEndpointType"], "Gateway");
        assert_eq!(
            endpoint["ServiceName"],
            serde_json::json!({"Fn::Sub": format!("com.amazonaws.${{AWS::Region}}.{service}")})
        );
        assert_eq!(
            endpoint["RouteTableIds"],
            serde_json::json!([{"Ref": "PrivateRouteTable1"}, {"Ref": "PrivateRouteTable2"}])
        );
    }
}

#[test]
fn fargate_spot_replaces_the_launch_type_with_a_capacity_provider() {
    let cfg = stacks::config::StackConfig {
        fargate_spot: true,
        ..Default::default()
    };
    let stacks = crate::helpers::synth(&cfg);
    let app = crate::helpers::of_kind(&stacks, "app")
        .template
        .to_json_value();
    let service = &app["Resources"]["Service"]["Properties"];
    assert!(service.get("LaunchType").is_none());
    assert_eq!(
        service["CapacityProviderStrategy"],
        serde_json::json!([{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}])
    );
    assert_eq!(
        app["Resources"]["Cluster"]["Properties"]["CapacityProviders"],
        serde_json::json!(["FARGATE", "FARGATE_SPOT"])
    );
    let default = crate::helpers::synth(&stacks::config::StackConfig::default());
    let app = crate::helpers::of_kind(&default, "app")
        .template
        .to_json_value();
    assert_eq!(
        app["Resources"]["Service"]["Properties"]["LaunchType"],
        "FARGATE"
    );
}

#[test]
fn budget_alerts_the_address_at_80_percent_and_at_the_forecast() {
    let network = network_of(&stacks::config::StackConfig {
        budget_usd: 40,
        budget_email: "ops@example.com".into(),
        ..Default::default()
    });
    let budget = &network["Resources"]["MonthlyBudget"];
    assert_eq!(budget["Type"], "AWS::Budgets::Budget");
    let properties = &budget["Properties"];
    assert_eq!(
        properties["Budget"],
        serde_json::json!({
            "BudgetName": "llm-eval-monthly",
            "BudgetLimit": {"Amount": 40.0, "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        })
    );
    let alerts = properties["NotificationsWithSubscribers"]
        .as_array()
        .unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["Notification"]["NotificationType"], "ACTUAL");
    assert_eq!(alerts[0]["Notification"]["Threshold"], 80.0);
    assert_eq!(alerts[1]["Notification"]["NotificationType"], "FORECASTED");
    assert_eq!(
        alerts[1]["Subscribers"],
        serde_json::json!([{"SubscriptionType": "EMAIL", "Address": "ops@example.com"}])
    );
    assert!(
        network_of(&stacks::config::StackConfig::default())["Resources"]
            .get("MonthlyBudget")
            .is_none()
    );
}

/// What pause deletes from the app stack: the load balancer, its listener and target group and
/// the VPC origin carry `Running`; the distribution stays (its URL too) and answers with the
/// paused page's function; the service drops its load balancer while paused.
#[test]
fn pause_removes_the_load_balancer_and_vpc_origin_but_keeps_the_distribution() {
    for cfg in StackConfig::default().toggle_combinations() {
        if !cfg.deploy_prompt_app {
            continue;
        }
        let label = cfg.toggle_label();
        let stacks = synth(&cfg);
        let app = of_kind(&stacks, "app").template.to_json_value();
        let resources = &app["Resources"];
        for id in [
            "LoadBalancer",
            "TargetGroup",
            "HttpListener",
            "AlbVpcOrigin",
        ] {
            assert_eq!(resources[id]["Condition"], "Running", "{label} {id}");
        }
        for id in [
            "Distribution",
            "PausedPageFunction",
            "Service",
            "AlbSecurityGroup",
        ] {
            assert!(resources[id].get("Condition").is_none(), "{label} {id}");
        }
        // Nothing unconditional names a conditional resource by `DependsOn`.
        for (id, resource) in resources.as_object().unwrap() {
            if resource.get("Condition").is_some() {
                continue;
            }
            for dependency in resource["DependsOn"].as_array().into_iter().flatten() {
                let target = dependency.as_str().unwrap();
                assert!(
                    resources[target].get("Condition").is_none(),
                    "{label}: {id} depends on conditional {target}"
                );
            }
        }
        let service = &resources["Service"];
        assert_eq!(
            service["Properties"]["LoadBalancers"]["Fn::If"][0], "Running",
            "{label}"
        );
        assert_eq!(
            service["Properties"]["LoadBalancers"]["Fn::If"][2],
            serde_json::json!({"Ref": "AWS::NoValue"})
        );
        assert_eq!(
            service["Properties"]["HealthCheckGracePeriodSeconds"],
            serde_json::json!({"Fn::If": ["Running", 60, {"Ref": "AWS::NoValue"}]})
        );
        // The service waits for the listener while running, through a reference.
        assert_eq!(
            service["Metadata"]["ListenerWhenRunning"],
            serde_json::json!({"Fn::If": ["Running", {"Ref": "HttpListener"}, ""]})
        );
        let config = &resources["Distribution"]["Properties"]["DistributionConfig"];
        let origin = &config["Origins"][0];
        assert_eq!(
            origin["DomainName"],
            serde_json::json!({"Fn::If": ["Running", {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}, {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}]})
        );
        assert_eq!(
            origin["CustomOriginConfig"]["Fn::If"][2]["OriginProtocolPolicy"],
            "https-only"
        );
        assert_eq!(
            origin["CustomOriginConfig"]["Fn::If"][2]["OriginSSLProtocols"],
            serde_json::json!(["TLSv1.2"])
        );
        assert_eq!(
            config["DefaultCacheBehavior"]["FunctionAssociations"],
            serde_json::json!({"Fn::If": ["Running", {"Ref": "AWS::NoValue"}, [{
                "EventType": "viewer-request",
                "FunctionARN": {"Fn::GetAtt": ["PausedPageFunction", "FunctionARN"]}
            }]]})
        );
        let function = &resources["PausedPageFunction"]["Properties"];
        assert_eq!(function["AutoPublish"], true);
        assert_eq!(function["FunctionConfig"]["Runtime"], "cloudfront-js-2.0");
        let code = function["FunctionCode"].as_str().unwrap();
        assert!(code.contains("statusCode: 503"), "{code}");
        assert!(code.contains("deployer resume"), "{code}");
        assert!(
            code.len() < 10 * 1024,
            "CloudFront Functions take at most 10 KB"
        );
        // The URL output stays: it names the distribution, which is never removed.
        assert!(app["Outputs"]["Url"].get("Condition").is_none(), "{label}");
    }
}

/// `DEPLOY_TASK_EGRESS=public-ip`: no NAT gateway, no private default route; the tasks sit in
/// the public subnets with a public address and still admit only the load balancer; the free
/// gateway endpoints serve the public route table.
#[test]
fn public_ip_egress_has_no_nat_and_tasks_admit_only_the_load_balancer() {
    let cfg = StackConfig {
        task_egress: stacks::config::TaskEgress::PublicIp,
        deploy_sagemaker_domain: false,
        ..StackConfig::default()
    };
    let network = network_of(&cfg);
    let resources = network["Resources"].as_object().unwrap();
    for (id, resource) in resources {
        assert_ne!(resource["Type"], "AWS::EC2::NatGateway", "{id}");
        assert_ne!(resource["Type"], "AWS::EC2::EIP", "{id}");
        assert!(!id.starts_with("PrivateDefaultRoute"), "{id}");
    }
    for id in ["S3Endpoint", "DynamoDbEndpoint"] {
        assert_eq!(
            resources[id]["Properties"]["RouteTableIds"],
            serde_json::json!([{"Ref": "PublicRouteTable"}]),
            "{id}"
        );
    }
    // The subnets still give no address by default: only the tasks ask for one.
    for n in [1, 2] {
        assert_eq!(
            resources[&format!("PublicSubnet{n}")]["Properties"]["MapPublicIpOnLaunch"],
            false
        );
    }
    let stacks = synth(&cfg);
    let app = of_kind(&stacks, "app").template.to_json_value();
    let vpc =
        &app["Resources"]["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"];
    assert_eq!(vpc["AssignPublicIp"], "ENABLED");
    assert_eq!(
        vpc["Subnets"],
        serde_json::json!([
            {"Fn::ImportValue": "llm-eval-network-PublicSubnet1Id"},
            {"Fn::ImportValue": "llm-eval-network-PublicSubnet2Id"}
        ])
    );
    let task_sg = &app["Resources"]["TaskSecurityGroup"]["Properties"];
    assert!(task_sg.get("SecurityGroupIngress").is_none());
    let ingress = &app["Resources"]["TaskIngressFromAlb"]["Properties"];
    assert_eq!(
        ingress["SourceSecurityGroupId"],
        serde_json::json!({"Fn::GetAtt": ["AlbSecurityGroup", "GroupId"]})
    );
    assert!(ingress.get("CidrIp").is_none());
    // The only ingress rule of the tasks' group is that one.
    let rules: Vec<&str> = app["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, resource)| {
            resource["Type"] == "AWS::EC2::SecurityGroupIngress"
                && resource["Properties"]["GroupId"]
                    == serde_json::json!({"Fn::GetAtt": ["TaskSecurityGroup", "GroupId"]})
        })
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(rules, ["TaskIngressFromAlb"]);
    // The default stays private.
    let default = default_stack("app").template.to_json_value();
    assert_eq!(
        default["Resources"]["Service"]["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
            ["AssignPublicIp"],
        "DISABLED"
    );
    assert!(
        default["Resources"]["Service"]["Metadata"]
            .get("checkov")
            .is_none()
    );
}
