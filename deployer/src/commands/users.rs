//! `deployer users add | list | remove | reset-password`: the app's users, for workshop
//! facilitators, in the app stack's Cognito user pool (from its `UserPoolId` output, or
//! `--user-pool-id`).
//!
//! Every row (an address on the command line or a line of `--csv`) gets its own result line on
//! stdout; an invalid address, a duplicate or a failed call is reported on its row and the other
//! rows go on (exit 1 at the end when any row failed). Re-runs are safe: an existing user is
//! reported and left as it is, so nothing is created twice and no password already handed out
//! is lost. Temporary passwords go only where asked: `--credentials-out FILE` (a CSV of
//! `email,temporary_password`, created with mode 0600 and appended to on re-runs) or stdout with
//! `--show-passwords`; without either, `add` lets Cognito email each user their invitation.
//! `add --facilitator` also puts each user (new or existing) in the pool's facilitators group
//! (`DEPLOY_FACILITATOR_GROUP`), and `list` marks its members.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::cognito::{Created, Email, Pool};
use crate::config::ConfigArgs;
use crate::deployment::Deployment;
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// Largest `--csv` file read.
const MAX_CSV_BYTES: u64 = 10 * 1024 * 1024;
/// Most rows one run handles.
const MAX_ROWS: usize = 10_000;

/// Arguments of `deployer users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// Settings (prefix and region find the app stack).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The user pool [default: the app stack's `UserPoolId` output].
    #[arg(long, value_name = "ID", global = true)]
    pub user_pool_id: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// `deployer users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create users with temporary passwords (they choose their own at first login).
    Add(AddArgs),
    /// List the pool's users.
    List,
    /// Delete users.
    Remove(EmailsArgs),
    /// Give users a new temporary password.
    ResetPassword(ResetArgs),
}

/// Where temporary passwords go.
#[derive(Debug, Args)]
pub struct PasswordsOut {
    /// Append `email,temporary_password` rows to this CSV (created with mode 0600).
    #[arg(long, value_name = "FILE")]
    pub credentials_out: Option<PathBuf>,
    /// Print temporary passwords on stdout.
    #[arg(long)]
    pub show_passwords: bool,
}

/// Arguments of `users add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Email addresses (each becomes the username).
    #[arg(value_name = "EMAIL")]
    pub emails: Vec<String>,
    /// Also read addresses from this CSV: its `email` column (first row a header), or its first
    /// column when no header names `email`.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Where passwords go.
    #[command(flatten)]
    pub out: PasswordsOut,
    /// Make them facilitators: members of the pool's facilitators group
    /// (DEPLOY_FACILITATOR_GROUP), who see every user's runs and datasets in the web app.
    #[arg(long)]
    pub facilitator: bool,
}

/// Email addresses.
#[derive(Debug, Args)]
pub struct EmailsArgs {
    /// Email addresses.
    #[arg(value_name = "EMAIL", required = true)]
    pub emails: Vec<String>,
}

/// Arguments of `users reset-password`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Email addresses.
    #[arg(value_name = "EMAIL", required = true)]
    pub emails: Vec<String>,
    /// Where passwords go (one of them is required).
    #[command(flatten)]
    pub out: PasswordsOut,
}

/// One input row: where it came from and what it holds.
#[derive(Debug)]
struct Row {
    /// `argument 2` or `participants.csv:3`.
    origin: String,
    /// The address, or why it is not one.
    email: Result<Email, String>,
}

/// Runs `deployer users ...`.
pub async fn run(
    args: &UsersArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    // Inputs first, so a bad file or flag fails before any AWS call.
    let rows = match &args.command {
        UsersCommand::Add(add) => {
            let mut rows = argument_rows(&add.emails);
            if let Some(path) = &add.csv {
                rows.extend(csv_rows(path).map_err(usage)?);
            }
            if rows.is_empty() {
                return Err(usage(anyhow::anyhow!(
                    "`users add` needs email addresses or --csv FILE"
                )));
            }
            rows
        }
        UsersCommand::Remove(remove) => argument_rows(&remove.emails),
        UsersCommand::ResetPassword(reset) => {
            if reset.out.credentials_out.is_none() && !reset.out.show_passwords {
                return Err(usage(anyhow::anyhow!(
                    "`users reset-password` needs --credentials-out FILE or --show-passwords: the new temporary passwords must go somewhere"
                )));
            }
            argument_rows(&reset.emails)
        }
        UsersCommand::List => Vec::new(),
    };
    if rows.len() > MAX_ROWS {
        return Err(usage(anyhow::anyhow!(
            "{} rows: at most {MAX_ROWS} per run",
            rows.len()
        )));
    }
    let deployment = Deployment::open(&args.config, env).await?;
    let pool_id = match &args.user_pool_id {
        Some(id) => id.clone(),
        None => app_user_pool(&deployment).await?,
    };
    let pool = Pool::new(&deployment.sdk, &pool_id);
    let group = deployment.cfg.facilitator_group.as_str();
    match &args.command {
        UsersCommand::List => list(&pool, group, stdout).await,
        UsersCommand::Add(add) => {
            let facilitators = add.facilitator.then_some(group);
            add_users(&pool, rows, &add.out, facilitators, stdout).await
        }
        UsersCommand::Remove(_) => remove_users(&pool, rows, stdout).await,
        UsersCommand::ResetPassword(reset) => reset_users(&pool, rows, &reset.out, stdout).await,
    }
}

/// The app stack's `UserPoolId` output.
async fn app_user_pool(deployment: &Deployment) -> anyhow::Result<String> {
    let name = stacks::stacks::stack_name(&deployment.cfg, stacks::StackKind::App);
    let state = deployment.cfn.describe(&name).await?.with_context(|| {
        format!(
            "the app stack {name} is not deployed in {}; run `deployer up`, or pass --user-pool-id",
            deployment.cfg.region
        )
    })?;
    state
        .output("UserPoolId")
        .map(str::to_owned)
        .with_context(|| {
            format!("the app stack {name} has no UserPoolId output; pass --user-pool-id")
        })
}

fn argument_rows(emails: &[String]) -> Vec<Row> {
    emails
        .iter()
        .enumerate()
        .map(|(idx, email)| Row {
            origin: format!("argument {}", idx + 1),
            email: Email::parse(email),
        })
        .collect()
}

/// The rows of a participants CSV; errors name the file (and line).
fn csv_rows(path: &Path) -> anyhow::Result<Vec<Row>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_CSV_BYTES {
        anyhow::bail!(
            "{}: {size} bytes, more than the {MAX_CSV_BYTES} a participants list may have",
            path.display()
        );
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::Read::take(file, MAX_CSV_BYTES));
    let mut column = 0;
    let mut rows = Vec::new();
    for (record_idx, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: invalid CSV", path.display()))?;
        let line = record
            .position()
            .map_or(record_idx + 1, |position| position.line() as usize);
        if record_idx == 0 {
            if let Some(header) = record
                .iter()
                .position(|cell| cell.eq_ignore_ascii_case("email"))
            {
                column = header;
                continue;
            }
            if !record.iter().any(|cell| cell.contains('@')) {
                anyhow::bail!("{}:1: the header has no `email` column", path.display());
            }
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        rows.push(Row {
            origin: format!("{}:{line}", path.display()),
            email: record
                .get(column)
                .ok_or_else(|| format!("no column {}", column + 1))
                .and_then(Email::parse),
        });
        if rows.len() > MAX_ROWS {
            anyhow::bail!("{}: more than {MAX_ROWS} rows", path.display());
        }
    }
    Ok(rows)
}

/// The valid, first-seen addresses; invalid and duplicate rows are reported and counted.
fn valid_rows(
    rows: Vec<Row>,
    stdout: &mut Stdout,
    failed: &mut usize,
) -> anyhow::Result<Vec<Email>> {
    let mut seen: HashMap<Email, String> = HashMap::new();
    let mut emails = Vec::new();
    for row in rows {
        match row.email {
            Err(why) => {
                *failed += 1;
                stdout.print(format!("invalid    {}: {why}\n", row.origin))?;
            }
            Ok(email) => {
                if let Some(first) = seen.get(&email) {
                    *failed += 1;
                    stdout.print(format!(
                        "duplicate  {}: {email} (first on {first}; handled once)\n",
                        row.origin
                    ))?;
                    continue;
                }
                seen.insert(email.clone(), row.origin);
                emails.push(email);
            }
        }
    }
    Ok(emails)
}

/// Exit 1 when any row failed.
fn finish(failed: usize) -> anyhow::Result<Outcome> {
    if failed > 0 {
        eprintln!("{failed} row(s) failed (see above); the others were done");
        return Ok(Outcome::CheckFailed);
    }
    Ok(Outcome::Done)
}

/// The `--credentials-out` file, opened for appending with mode 0600.
struct CredentialsFile {
    path: PathBuf,
    file: std::fs::File,
}

impl CredentialsFile {
    fn open(path: &Path) -> anyhow::Result<CredentialsFile> {
        let (mut file, is_new) = crate::output::open_private_append(path)?;
        if is_new {
            file.write_all(b"email,temporary_password\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(CredentialsFile {
            path: path.to_owned(),
            file,
        })
    }

    fn write(&mut self, email: &Email, password: &SecretString) -> anyhow::Result<()> {
        // Written and flushed per user, so an interrupted run loses no password it created.
        writeln!(self.file, "{email},{}", password.expose_secret())
            .and_then(|()| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Hands a new password to where the user asked.
fn deliver(
    email: &Email,
    password: &SecretString,
    out: &PasswordsOut,
    file: &mut Option<CredentialsFile>,
    stdout: &mut Stdout,
) -> anyhow::Result<()> {
    if let Some(file) = file {
        file.write(email, password)?;
    }
    if out.show_passwords {
        stdout.print(format!(
            "  temporary password: {}\n",
            password.expose_secret()
        ))?;
    }
    Ok(())
}

fn progress_bar(n_rows: usize) -> Option<indicatif::ProgressBar> {
    if n_rows < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(n_rows as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("users [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

async fn add_users(
    pool: &Pool,
    rows: Vec<Row>,
    out: &PasswordsOut,
    facilitators: Option<&str>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let mut failed = 0;
    let emails = valid_rows(rows, stdout, &mut failed)?;
    let policy = pool.password_policy().await?;
    let mut file = out
        .credentials_out
        .as_deref()
        .map(CredentialsFile::open)
        .transpose()?;
    let send_invitation = file.is_none() && !out.show_passwords;
    let bar = progress_bar(emails.len());
    let (mut n_created, mut n_existing) = (0, 0);
    for email in &emails {
        let created = match pool.create(email, policy, send_invitation).await {
            Ok(Created::New(password)) => {
                n_created += 1;
                let how = if send_invitation {
                    " (Cognito emails the invitation)"
                } else {
                    ""
                };
                stdout.print(format!("created    {email}{how}\n"))?;
                deliver(email, &password, out, &mut file, stdout)?;
                true
            }
            Ok(Created::Exists) => {
                n_existing += 1;
                stdout.print(format!("exists     {email} (unchanged)\n"))?;
                true
            }
            Err(err) => {
                failed += 1;
                stdout.print(format!("failed     {email}: {err:#}\n"))?;
                false
            }
        };
        // A facilitator, new or existing, joins the group (again: no change).
        if let Some(group) = facilitators.filter(|_| created) {
            match pool.add_to_group(email, group).await {
                Ok(()) => stdout.print(format!("facilitator {email} (group {group})\n"))?,
                Err(err) => {
                    failed += 1;
                    stdout.print(format!("failed     {email}: {err:#}\n"))?;
                }
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!(
        "{n_created} created, {n_existing} already existed, {failed} failed, in user pool {}",
        pool.id()
    );
    if let Some(file) = &file
        && n_created > 0
    {
        eprintln!("temporary passwords written to {}", file.path.display());
    }
    finish(failed)
}

async fn remove_users(pool: &Pool, rows: Vec<Row>, stdout: &mut Stdout) -> anyhow::Result<Outcome> {
    let mut failed = 0;
    let emails = valid_rows(rows, stdout, &mut failed)?;
    for email in &emails {
        match pool.delete(email).await {
            Ok(true) => stdout.print(format!("removed    {email}\n"))?,
            Ok(false) => stdout.print(format!("absent     {email} (no such user)\n"))?,
            Err(err) => {
                failed += 1;
                stdout.print(format!("failed     {email}: {err:#}\n"))?;
            }
        }
    }
    finish(failed)
}

async fn reset_users(
    pool: &Pool,
    rows: Vec<Row>,
    out: &PasswordsOut,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let mut failed = 0;
    let emails = valid_rows(rows, stdout, &mut failed)?;
    let policy = pool.password_policy().await?;
    let mut file = out
        .credentials_out
        .as_deref()
        .map(CredentialsFile::open)
        .transpose()?;
    for email in &emails {
        match pool.reset_password(email, policy).await {
            Ok(Some(password)) => {
                stdout.print(format!("reset      {email}\n"))?;
                deliver(email, &password, out, &mut file, stdout)?;
            }
            Ok(None) => {
                failed += 1;
                stdout.print(format!("failed     {email}: no such user\n"))?;
            }
            Err(err) => {
                failed += 1;
                stdout.print(format!("failed     {email}: {err:#}\n"))?;
            }
        }
    }
    finish(failed)
}

async fn list(pool: &Pool, group: &str, stdout: &mut Stdout) -> anyhow::Result<Outcome> {
    let users = pool.list().await?;
    let facilitators = pool.group_members(group).await?;
    let mut text = String::new();
    for user in &users {
        let role = if facilitators.contains(&user.username) {
            " facilitator"
        } else {
            ""
        };
        text.push_str(&format!(
            "{:<40} {:<22} {}{role}\n",
            user.email.as_deref().unwrap_or(&user.username),
            user.status,
            if user.enabled { "enabled" } else { "disabled" }
        ));
    }
    stdout.print(text)?;
    eprintln!("{} user(s) in user pool {}", users.len(), pool.id());
    Ok(Outcome::Done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn emails_of(text: &str) -> Vec<Result<String, String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, text).unwrap();
        csv_rows(&path)
            .unwrap()
            .into_iter()
            .map(|row| {
                row.email
                    .map(|email| format!("{}={email}", row.origin.rsplit(':').next().unwrap()))
            })
            .collect()
    }

    #[test]
    fn csv_with_an_email_header() {
        let rows = emails_of("name,Email\nAda,ada@example.com\n\nBob,bob\n");
        assert_eq!(rows[0], Ok("2=ada@example.com".to_owned()));
        assert!(rows[1].as_ref().unwrap_err().contains("no @"));
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn csv_without_a_header_uses_the_first_column() {
        let rows = emails_of("ada@example.com,Ada\nbob@example.com\n");
        assert_eq!(
            rows,
            vec![
                Ok("1=ada@example.com".to_owned()),
                Ok("2=bob@example.com".to_owned())
            ]
        );
    }

    #[test]
    fn csv_header_without_email_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, "name,company\nAda,X\n").unwrap();
        let err = csv_rows(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("p.csv:1: the header has no `email` column"),
            "{err}"
        );
    }
}
