//! The whole `deployer up` → `status` → no-op `up` → updating `up` → `down --purge` path with the app stack, against
//! real components where they exist: moto for STS, ECR's API, EC2's prefix lists, Cognito, ECS
//! and S3; Debian's `docker-registry` (with the Basic credentials moto's ECR
//! `GetAuthorizationToken` hands out) standing in for the ECR registry through
//! `--registry-endpoint`; and, because moto's CloudFormation cannot run the app stack (it skips
//! CloudFront, Cognito and Secrets Manager and rejects `GetAtt` to them), the scripted
//! [`Stacks`] double for CloudFormation alone.

use std::process::Command;

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use crate::cfn_double::Stacks;
use crate::helpers::{aws_env, run_with, with_sdk};
use crate::image::{llm_eval, start_registry, tool};
use crate::users::user_pool;
use model_doubles::moto::Moto;

const REPOSITORY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-eval-app";
/// The registry password moto's `GetAuthorizationToken` hands out for the account.
const ECR_PASSWORD: &str = "123456789012-auth-token";
const DATA_BUCKET: &str = "llm-eval-data-test";
const LOGS_BUCKET: &str = "llm-eval-logs-test";
/// The toolkit's templates bucket: the app template is over CloudFormation's 51,200-byte
/// inline limit, so `up` uploads it there and passes its URL.
const TEMPLATES_BUCKET: &str = "llm-eval-templates-test";

/// What CloudFormation would have created before `up` reads it: the toolkit's repository, the
/// app's user pool and buckets (one object with two versions and a delete marker).
fn prepare(moto: &Moto) -> String {
    let pool = user_pool(moto);
    with_sdk(moto, async |config| {
        aws_sdk_ecr::Client::new(&config)
            .create_repository()
            .repository_name("llm-eval-app")
            .send()
            .await
            .unwrap();
        let s3 = aws_sdk_s3::Client::new(&config);
        for bucket in [DATA_BUCKET, LOGS_BUCKET, TEMPLATES_BUCKET] {
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        s3.put_bucket_versioning()
            .bucket(DATA_BUCKET)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        for text in ["one", "two"] {
            s3.put_object()
                .bucket(DATA_BUCKET)
                .key("datasets/squad.jsonl")
                .body(text.as_bytes().to_vec().into())
                .send()
                .await
                .unwrap();
        }
        s3.delete_object()
            .bucket(DATA_BUCKET)
            .key("datasets/squad.jsonl")
            .send()
            .await
            .unwrap();
    });
    pool
}

/// The ECS service as the app stack's resources would make it, running `image`.
fn create_service(moto: &Moto, image: &str) {
    with_sdk(moto, async |config| {
        let ecs = aws_sdk_ecs::Client::new(&config);
        ecs.create_cluster()
            .cluster_name("llm-eval")
            .send()
            .await
            .unwrap();
        let definition = ecs
            .register_task_definition()
            .family("llm-eval-app")
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image(image)
                    .memory(1024)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let arn = definition
            .task_definition()
            .unwrap()
            .task_definition_arn()
            .unwrap()
            .to_owned();
        ecs.create_service()
            .cluster("llm-eval")
            .service_name("llm-eval-app")
            .task_definition(arn)
            .desired_count(1)
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn up_builds_pushes_deploys_reports_and_purges() {
    // moto reports this many running tasks for every service.
    let moto = Moto::start_blocking_with_env(&[("MOTO_ECS_SERVICE_RUNNING", "1")]);
    let pool = prepare(&moto);
    let registry_dir = tempfile::tempdir().unwrap();
    let (_registry, registry) = start_registry(registry_dir.path(), "AWS", ECR_PASSWORD);
    let app_outputs = [
        ("Url", "https://d111111abcdef8.cloudfront.net"),
        ("UserPoolId", pool.as_str()),
        ("ClusterName", "llm-eval"),
        ("ServiceName", "llm-eval-app"),
        ("DataBucketName", DATA_BUCKET),
        ("LogsBucketName", LOGS_BUCKET),
    ];
    let toolkit_outputs = [
        ("RepositoryUri", REPOSITORY),
        ("RepositoryName", "llm-eval-app"),
        ("TemplatesBucketName", TEMPLATES_BUCKET),
    ];
    let cfn = Stacks::start(&[
        ("llm-eval-app", &app_outputs),
        ("llm-eval-toolkit", &toolkit_outputs),
    ])
    .with_s3(moto.url());
    let mut env = aws_env(&moto);
    env.push(("AWS_ENDPOINT_URL_CLOUDFORMATION", cfn.url().to_owned()));
    env.push(("DEPLOY_PROMPT_APP", "yes".to_owned()));
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "no".to_owned()));
    env.push(("DEPLOY_REGISTRY_ENDPOINT", registry.clone()));
    let dir = tempfile::tempdir().unwrap();
    let binary = llm_eval();
    let binary = binary.to_str().unwrap();
    let up_args = [
        "up",
        "--binary",
        binary,
        "--require-approval",
        "never",
        "--admin-email",
        "admin@example.com",
        "--outputs-file",
        "outputs.json",
    ];

    let up = run_with(dir.path(), &env, &up_args);
    assert_eq!(up.code, Some(0), "{}\n{}", up.stdout, up.stderr);
    for stack in ["llm-eval-toolkit", "llm-eval-network", "llm-eval-app"] {
        assert!(
            up.stderr.contains(&format!("{stack}: CREATE_COMPLETE")),
            "{}",
            up.stderr
        );
    }
    // The app stack got the image by digest, in the toolkit's repository.
    let parameters = cfn.parameters("llm-eval-app");
    let image = parameters
        .iter()
        .find(|(key, _)| key == "ImageUri")
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("no ImageUri among {parameters:?}"));
    let digest = image
        .strip_prefix(&format!("{REPOSITORY}@"))
        .unwrap_or_else(|| panic!("{image} is not {REPOSITORY}@<digest>"))
        .to_owned();
    assert!(digest.starts_with("sha256:"), "{image}");
    assert!(
        parameters
            .iter()
            .any(|(key, value)| key == "CloudFrontPrefixListId" && value.starts_with("pl-")),
        "{parameters:?}"
    );
    // It is in the registry, under that digest, pushed with ECR's credentials.
    let inspected = tool(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("AWS:{ECR_PASSWORD}"),
        &format!("docker://{registry}/llm-eval-app@{digest}"),
    ]));
    let manifest: serde_json::Value = serde_json::from_slice(&inspected).unwrap();
    assert!(
        manifest["layers"]
            .as_array()
            .is_some_and(|layers| !layers.is_empty())
    );
    // The first user exists; Cognito (not the deployer) delivers the temporary password.
    assert!(
        up.stderr.contains("created app user admin@example.com"),
        "{}",
        up.stderr
    );
    assert!(!up.stderr.contains(ECR_PASSWORD), "{}", up.stderr);
    let status = with_sdk(&moto, async |config| {
        aws_sdk_cognitoidentityprovider::Client::new(&config)
            .admin_get_user()
            .user_pool_id(&pool)
            .username("admin@example.com")
            .send()
            .await
            .unwrap()
            .user_status()
            .map(|status| status.as_str().to_owned())
    });
    assert_eq!(status.as_deref(), Some("FORCE_CHANGE_PASSWORD"));
    let outputs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("outputs.json")).unwrap()).unwrap();
    assert_eq!(
        outputs["llm-eval-app"]["Url"], "https://d111111abcdef8.cloudfront.net",
        "{outputs}"
    );

    // `status`: the stacks, and the service's running vs desired tasks and its image.
    create_service(&moto, &image);
    let status = run_with(dir.path(), &env, &["status"]);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    assert!(
        status.stdout.contains("llm-eval-app: CREATE_COMPLETE"),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains(&format!("  service: 1/1 tasks running, image {image}\n")),
        "{}",
        status.stdout
    );

    // The same again: the image is already there and no stack changes.
    let again = run_with(dir.path(), &env, &up_args);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains(&format!("image {image} (0 blobs uploaded)")),
        "{}",
        again.stderr
    );
    for stack in ["llm-eval-toolkit", "llm-eval-network", "llm-eval-app"] {
        assert!(
            again.stderr.contains(&format!("{stack}: unchanged")),
            "{}",
            again.stderr
        );
    }
    assert!(
        again.stderr.contains("app user admin@example.com exists"),
        "{}",
        again.stderr
    );
    let change_sets = cfn
        .calls()
        .iter()
        .filter(|(action, _)| action == "CreateChangeSet")
        .count();
    assert_eq!(change_sets, 3, "one per stack, none on the re-run");

    // A changed setting updates the app stack alone.
    let mut bigger = env.clone();
    bigger.push(("DEPLOY_TASK_CPU", "1024".to_owned()));
    bigger.push(("DEPLOY_TASK_MEMORY", "2048".to_owned()));
    let update = run_with(dir.path(), &bigger, &up_args);
    assert_eq!(update.code, Some(0), "{}", update.stderr);
    assert!(
        update.stderr.contains("llm-eval-app: UPDATE_COMPLETE"),
        "{}",
        update.stderr
    );
    for stack in ["llm-eval-toolkit", "llm-eval-network"] {
        assert!(
            update.stderr.contains(&format!("{stack}: unchanged")),
            "{}",
            update.stderr
        );
    }

    // `down --purge`: the stacks, then what they retain by design.
    let down = run_with(dir.path(), &env, &["down", "--force", "--purge"]);
    assert_eq!(down.code, Some(0), "{}\n{}", down.stdout, down.stderr);
    assert!(
        down.stdout
            .contains("deleted llm-eval-app, llm-eval-network, llm-eval-toolkit"),
        "{}",
        down.stdout
    );
    assert!(
        down.stdout
            .contains(&format!("purged bucket {DATA_BUCKET} (3 object versions)")),
        "{}",
        down.stdout
    );
    assert!(
        down.stdout
            .contains("purged image repository llm-eval-app and its images"),
        "{}",
        down.stdout
    );
    let (buckets, repositories) = with_sdk(&moto, async |config| {
        let buckets = aws_sdk_s3::Client::new(&config)
            .list_buckets()
            .send()
            .await
            .unwrap();
        let repositories = aws_sdk_ecr::Client::new(&config)
            .describe_repositories()
            .send()
            .await
            .unwrap();
        (buckets.buckets().len(), repositories.repositories().len())
    });
    assert_eq!((buckets, repositories), (0, 0));
}

/// An `up` interrupted (Ctrl-C) while CloudFormation was still creating a stack: the next `up`
/// waits for that operation to end, then goes on from the state AWS is in.
#[test]
fn up_waits_for_an_operation_an_interrupted_up_left_running() {
    let moto = Moto::start_blocking();
    let cfn = Stacks::start(&[]);
    cfn.in_progress(
        "llm-eval-network",
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        2,
    );
    let mut env = aws_env(&moto);
    env.push(("AWS_ENDPOINT_URL_CLOUDFORMATION", cfn.url().to_owned()));
    env.push(("DEPLOY_PROMPT_APP", "no".to_owned()));
    env.push(("DEPLOY_SAGEMAKER_DOMAIN", "no".to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let up = run_with(dir.path(), &env, &["up", "--require-approval", "never"]);
    assert_eq!(up.code, Some(0), "{}", up.stderr);
    assert!(
        up.stderr.contains(
            "llm-eval-network: CREATE_IN_PROGRESS (an earlier operation); waiting for it to end"
        ),
        "{}",
        up.stderr
    );
    // Then an update to what this `up` deploys, since the earlier template is not ours.
    assert!(
        up.stderr.contains("llm-eval-network: UPDATE_COMPLETE"),
        "{}",
        up.stderr
    );
    let calls = cfn.calls();
    let first_change_set = calls
        .iter()
        .position(|(action, _)| action == "CreateChangeSet")
        .unwrap();
    let describes_before = calls[..first_change_set]
        .iter()
        .filter(|(action, _)| action == "DescribeStacks")
        .count();
    assert!(describes_before >= 3, "waited: {calls:?}");
}
