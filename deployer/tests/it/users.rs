//! `deployer users` against moto's Cognito (a server of the test's own): add from arguments
//! and a CSV with per-row errors, an idempotent re-run, the 0600 credentials file, list,
//! reset-password and remove.

use crate::helpers::{Run, aws_env, run_with, with_sdk};
use model_doubles::moto::Moto;

fn run(dir: &std::path::Path, moto: &Moto, args: &[&str]) -> Run {
    run_with(dir, &aws_env(moto), args)
}

/// A user pool with the app stack's password policy, created in moto through the real SDK.
pub fn user_pool(moto: &Moto) -> String {
    with_sdk(moto, async |config| {
        let client = aws_sdk_cognitoidentityprovider::Client::new(&config);
        let policy = aws_sdk_cognitoidentityprovider::types::PasswordPolicyType::builder()
            .minimum_length(14)
            .require_lowercase(true)
            .require_uppercase(true)
            .require_numbers(true)
            .require_symbols(true)
            .build();
        let pool = client
            .create_user_pool()
            .pool_name("llm-eval-users")
            .policies(
                aws_sdk_cognitoidentityprovider::types::UserPoolPolicyType::builder()
                    .password_policy(policy)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        pool.user_pool().unwrap().id().unwrap().to_owned()
    })
}

#[test]
fn add_rerun_list_reset_remove() {
    let moto = Moto::start_blocking();
    let pool = user_pool(&moto);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("participants.csv"),
        "name,email\nAda,ada@example.com\nBob,not-an-email\nCyd,CYD@example.com\nAda again,ada@example.com\n",
    )
    .unwrap();
    let add = run(
        dir.path(),
        &moto,
        &[
            "users",
            "--user-pool-id",
            &pool,
            "add",
            "eve@example.com",
            "--csv",
            "participants.csv",
            "--credentials-out",
            "creds.csv",
        ],
    );
    // Two rows failed (invalid, duplicate): exit 1, the others were created.
    assert_eq!(add.code, Some(1), "{}\n{}", add.stdout, add.stderr);
    assert!(
        add.stdout.contains("created    eve@example.com\n"),
        "{}",
        add.stdout
    );
    assert!(
        add.stdout.contains("created    ada@example.com\n"),
        "{}",
        add.stdout
    );
    assert!(
        add.stdout.contains("created    cyd@example.com\n"),
        "{}",
        add.stdout
    );
    assert!(
        add.stdout.contains(
            "invalid    participants.csv:3: `not-an-email` is not an email address: no @"
        ),
        "{}",
        add.stdout
    );
    assert!(
        add.stdout.contains(
            "duplicate  participants.csv:5: ada@example.com (first on participants.csv:2"
        ),
        "{}",
        add.stdout
    );
    let creds_path = dir.path().join("creds.csv");
    let creds = std::fs::read_to_string(&creds_path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let lines: Vec<&str> = creds.lines().collect();
    assert_eq!(lines[0], "email,temporary_password");
    assert_eq!(lines.len(), 4, "{creds}");
    let (_, password) = lines[1].split_once(',').unwrap();
    assert!(password.len() >= 20);
    // No password on stdout or stderr unless asked for.
    assert!(!add.stdout.contains(password) && !add.stderr.contains(password));

    // A re-run creates nothing twice and keeps every password already written.
    let again = run(
        dir.path(),
        &moto,
        &[
            "users",
            "--user-pool-id",
            &pool,
            "add",
            "ada@example.com",
            "eve@example.com",
            "--credentials-out",
            "creds.csv",
        ],
    );
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stdout
            .contains("exists     ada@example.com (unchanged)"),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read_to_string(&creds_path).unwrap(), creds);

    let list = run(
        dir.path(),
        &moto,
        &["users", "--user-pool-id", &pool, "list"],
    );
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    for email in ["ada@example.com", "cyd@example.com", "eve@example.com"] {
        assert!(list.stdout.contains(email), "{}", list.stdout);
    }
    assert!(
        list.stdout.contains("FORCE_CHANGE_PASSWORD"),
        "{}",
        list.stdout
    );

    let refused = run(
        dir.path(),
        &moto,
        &[
            "users",
            "--user-pool-id",
            &pool,
            "reset-password",
            "ada@example.com",
        ],
    );
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    let reset = run(
        dir.path(),
        &moto,
        &[
            "users",
            "--user-pool-id",
            &pool,
            "reset-password",
            "ada@example.com",
            "nobody@example.com",
            "--show-passwords",
        ],
    );
    assert_eq!(reset.code, Some(1), "{}\n{}", reset.stdout, reset.stderr);
    assert!(
        reset
            .stdout
            .contains("reset      ada@example.com\n  temporary password: "),
        "{}",
        reset.stdout
    );
    assert!(
        reset
            .stdout
            .contains("failed     nobody@example.com: no such user"),
        "{}",
        reset.stdout
    );

    let remove = run(
        dir.path(),
        &moto,
        &[
            "users",
            "--user-pool-id",
            &pool,
            "remove",
            "ada@example.com",
            "nobody@example.com",
        ],
    );
    assert_eq!(remove.code, Some(0), "{}\n{}", remove.stdout, remove.stderr);
    assert!(
        remove.stdout.contains("removed    ada@example.com"),
        "{}",
        remove.stdout
    );
    assert!(
        remove.stdout.contains("absent     nobody@example.com"),
        "{}",
        remove.stdout
    );
    let list = run(
        dir.path(),
        &moto,
        &["users", "--user-pool-id", &pool, "list"],
    );
    assert!(!list.stdout.contains("ada@example.com"), "{}", list.stdout);
}

#[test]
fn without_a_pool_id_the_app_stack_must_be_deployed() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let list = run(dir.path(), &moto, &["users", "list"]);
    assert_eq!(list.code, Some(1), "{}", list.stderr);
    assert!(
        list.stderr
            .contains("the app stack llm-eval-app is not deployed"),
        "{}",
        list.stderr
    );
    assert!(list.stderr.contains("--user-pool-id"), "{}", list.stderr);
}

#[test]
fn add_needs_addresses() {
    let moto = Moto::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let add = run(
        dir.path(),
        &moto,
        &["users", "--user-pool-id", "us-east-1_x", "add"],
    );
    assert_eq!(add.code, Some(2), "{}", add.stderr);
    assert!(
        add.stderr.contains("needs email addresses or --csv FILE"),
        "{}",
        add.stderr
    );
}

/// `add --facilitator` puts new and existing users in the facilitators group (the app stack's
/// `FacilitatorsGroup`, named by DEPLOY_FACILITATOR_GROUP), `list` marks them, and a pool
/// without the group is a failed row, not a silent success.
#[test]
fn facilitators_join_the_group_and_list_marks_them() {
    let moto = Moto::start_blocking();
    let pool = user_pool(&moto);
    let dir = tempfile::tempdir().unwrap();
    let args = |emails: &[&'static str]| {
        let mut args = vec!["users", "--user-pool-id", pool.as_str(), "add"];
        args.extend_from_slice(emails);
        args.extend_from_slice(&["--facilitator", "--credentials-out", "creds.csv"]);
        args
    };
    // No group in the pool yet: the user is created, joining the group fails on its row.
    let missing = run(dir.path(), &moto, &args(&["fay@example.com"]));
    assert_eq!(
        missing.code,
        Some(1),
        "{}\n{}",
        missing.stdout,
        missing.stderr
    );
    assert!(
        missing.stdout.contains("created    fay@example.com")
            && missing.stdout.contains("has no group `facilitators`"),
        "{}",
        missing.stdout
    );

    with_sdk(&moto, async |config| {
        aws_sdk_cognitoidentityprovider::Client::new(&config)
            .create_group()
            .user_pool_id(&pool)
            .group_name("workshop-hosts")
            .send()
            .await
            .unwrap();
    });
    let mut env = aws_env(&moto);
    env.push(("DEPLOY_FACILITATOR_GROUP", "workshop-hosts".to_owned()));
    let added = run_with(
        dir.path(),
        &env,
        &args(&["fay@example.com", "gus@example.com"]),
    );
    assert_eq!(added.code, Some(0), "{}\n{}", added.stdout, added.stderr);
    assert!(
        added
            .stdout
            .contains("exists     fay@example.com (unchanged)")
            && added
                .stdout
                .contains("facilitator fay@example.com (group workshop-hosts)")
            && added
                .stdout
                .contains("facilitator gus@example.com (group workshop-hosts)"),
        "{}",
        added.stdout
    );
    let plain = run_with(
        dir.path(),
        &env,
        &[
            "users",
            "--user-pool-id",
            &pool,
            "add",
            "pat@example.com",
            "--show-passwords",
        ],
    );
    assert_eq!(plain.code, Some(0), "{}", plain.stderr);
    let list = run_with(
        dir.path(),
        &env,
        &["users", "--user-pool-id", &pool, "list"],
    );
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let line = |email: &str| {
        list.stdout
            .lines()
            .find(|line| line.starts_with(email))
            .unwrap_or_else(|| panic!("{email} not listed: {}", list.stdout))
            .to_string()
    };
    assert!(
        line("fay@example.com").ends_with(" facilitator"),
        "{}",
        list.stdout
    );
    assert!(
        line("gus@example.com").ends_with(" facilitator"),
        "{}",
        list.stdout
    );
    assert!(
        !line("pat@example.com").contains("facilitator"),
        "{}",
        list.stdout
    );
}
