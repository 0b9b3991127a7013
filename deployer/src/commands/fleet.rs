//! `deployer fleet up | down | status | users | pause | resume | doctor --targets targets.csv`:
//! the lifecycle in every
//! target account (see [`crate::fleet`]), at most `--parallel` at once, one progress line per
//! target and a final table (target, result, app URL, root cause). One failing target does not
//! stop the others; the state file remembers each target's result, so running the same command
//! again retries only the targets that did not succeed (`--all`: every target).

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::bootstrap::run::WorkDir;
use crate::config::{self, ConfigArgs, SETTINGS};
use crate::fleet::runner;
use crate::fleet::state::{self, Record, State};
use crate::fleet::targets::{self, Target};
use crate::outcome::{Outcome, usage};
use crate::output::Stdout;

/// Arguments of `deployer fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// Subcommands of `deployer fleet`.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Deploy to every target (`deployer up`, or `bootstrap up` with --via bootstrap).
    Up(RunArgs),
    /// Delete from every target (`deployer down --force`, or `bootstrap down --force`).
    Down(RunArgs),
    /// Show every target (`deployer status`, or `bootstrap status`).
    Status(RunArgs),
    /// Create each target's participant (its `email` column) as an app user in their own
    /// account, and append their temporary passwords to one CSV (mode 0600).
    Users(UsersArgs),
    /// Pause every target (`deployer pause`): no app task, load balancer or NAT gateway; data kept.
    Pause(RunArgs),
    /// Resume every paused target (`deployer resume`).
    Resume(RunArgs),
    /// Check every target before a workshop (`deployer doctor`); a target with a failed check
    /// fails.
    Doctor(RunArgs),
    /// The monthly estimate of the configuration times the number of targets (offline).
    Cost(FleetCostArgs),
}

/// Arguments of `fleet cost`.
#[derive(Debug, Args)]
pub struct FleetCostArgs {
    /// Settings of every target.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// CSV of targets (as for the other fleet commands); only their number is used.
    #[arg(long, value_name = "FILE")]
    pub targets: PathBuf,
    /// Models, tokens and output format.
    #[command(flatten)]
    pub estimate: crate::commands::cost::EstimateArgs,
}

/// Where each target's lifecycle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// From this machine (`deployer up` with the target's credentials).
    Local,
    /// In the target: deploy cfn_bootstrap.yaml there and follow its CodeBuild builds, so
    /// nothing is built locally.
    Bootstrap,
}

/// What every fleet command takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Settings passed to each target's command (except the region: each target has its own).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// CSV of targets: account_id,region[,role_name[,email]] (role default
    /// OrganizationAccountAccessRole); an optional header, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub targets: PathBuf,
    /// How many targets run at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub parallel: u16,
    /// Run every target, also those whose last run of this command succeeded.
    #[arg(long)]
    pub all: bool,
    /// Where the lifecycle runs.
    #[arg(long, value_enum, default_value = "local")]
    pub via: Via,
    /// State file [default: the targets file with extension .state.json].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Directory of the per-target logs [default: fleet-logs beside the state file].
    #[arg(long, value_name = "DIR")]
    pub logs: Option<PathBuf>,
}

/// Arguments of `fleet up | down | status`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Common arguments.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Further arguments for each target's command, after `--` (e.g. `-- --binary PATH`).
    #[arg(last = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// Arguments of `fleet users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// Common arguments.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Append account_id,region,app_url,email,temporary_password rows here (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
}

/// How one target ended in this run.
#[derive(Debug, Clone)]
struct Row {
    target: String,
    result: &'static str,
    app_url: Option<String>,
    root_cause: Option<String>,
}

/// Everything the targets' tasks share.
struct Shared {
    command: &'static str,
    via: Via,
    exe: PathBuf,
    flags: Vec<OsString>,
    extra: Vec<OsString>,
    logs: PathBuf,
    state_path: PathBuf,
    state: Mutex<State>,
    credentials_csv: Option<Mutex<csv::Writer<std::fs::File>>>,
    progress: Progress,
}

/// Runs `deployer fleet ...`.
pub async fn run(
    args: &FleetArgs,
    env: &dyn Fn(&str) -> Option<String>,
    stdout: &mut Stdout,
) -> anyhow::Result<Outcome> {
    let (command, common, extra, csv_path) = match &args.command {
        FleetCommand::Up(run) => ("up", &run.common, &run.extra, None),
        FleetCommand::Down(run) => ("down", &run.common, &run.extra, None),
        FleetCommand::Status(run) => ("status", &run.common, &run.extra, None),
        FleetCommand::Users(users) => ("users", &users.common, &Vec::new(), Some(&users.csv)),
        FleetCommand::Pause(run) => ("pause", &run.common, &run.extra, None),
        FleetCommand::Resume(run) => ("resume", &run.common, &run.extra, None),
        FleetCommand::Doctor(run) => ("doctor", &run.common, &run.extra, None),
        FleetCommand::Cost(cost) => {
            let targets = targets::read(&cost.targets).map_err(usage)?;
            let accounts = u32::try_from(targets.len())
                .ok()
                .filter(|count| *count > 0)
                .ok_or_else(|| usage(anyhow::anyhow!("{}: no targets", cost.targets.display())))?;
            return crate::commands::cost::print_estimate(
                &cost.config,
                accounts,
                &cost.estimate,
                env,
                stdout,
            );
        }
    };
    if matches!(command, "pause" | "resume" | "doctor") && common.via == Via::Bootstrap {
        return Err(usage(anyhow::anyhow!(
            "--via bootstrap: `fleet {command}` runs from this machine only (drop --via)"
        )));
    }
    if common.config.flag("region").is_some() {
        return Err(usage(anyhow::anyhow!(
            "--region: each target's region comes from the targets file"
        )));
    }
    // The settings are checked once here, not once per target.
    config::resolve(&common.config, env).map_err(usage)?;
    let targets = targets::read(&common.targets).map_err(usage)?;
    if command == "users"
        && let Some(target) = targets.iter().find(|target| target.email.is_none())
    {
        return Err(usage(anyhow::anyhow!(
            "{}:{}: email: missing; `fleet users` creates each target's participant from the 4th column",
            common.targets.display(),
            target.line
        )));
    }
    let state_path = common
        .state
        .clone()
        .unwrap_or_else(|| common.targets.with_extension("state.json"));
    let logs = common.logs.clone().unwrap_or_else(|| {
        state_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("fleet-logs")
    });
    create_private_dir(&logs)?;
    let state = State::load(&state_path).map_err(usage)?;
    let credentials_csv = match csv_path {
        Some(path) => Some(Mutex::new(open_credentials_csv(path)?)),
        None => None,
    };
    // Status always looks at every target; the others skip what already succeeded.
    let (todo, skipped): (Vec<Target>, Vec<Target>) = targets.into_iter().partition(|target| {
        common.all
            || command == "status"
            || command == "doctor"
            || !state
                .get(command, &target.key())
                .is_some_and(|record| record.ok)
    });
    let base = crate::aws::load(Some(
        &todo
            .first()
            .or(skipped.first())
            .map(|target| target.region.clone())
            .unwrap_or_default(),
    ))
    .await?;
    let shared = Arc::new(Shared {
        command,
        via: common.via,
        exe: std::env::current_exe().context("finding the deployer binary")?,
        flags: setting_flags(&common.config),
        extra: extra.iter().map(OsString::from).collect(),
        logs,
        state_path,
        state: Mutex::new(state),
        credentials_csv,
        progress: Progress::new(),
    });
    eprintln!(
        "fleet {command}: {} target(s) to run, {} skipped (succeeded last time; --all runs them too), {} at a time; logs in {}",
        todo.len(),
        skipped.len(),
        common.parallel,
        shared.logs.display()
    );
    let semaphore = Arc::new(tokio::sync::Semaphore::new(usize::from(common.parallel)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in todo.iter().cloned().enumerate() {
        let shared = shared.clone();
        let semaphore = semaphore.clone();
        let base = base.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            (index, run_target(&shared, &base, &target).await)
        });
    }
    let mut rows: Vec<Option<Row>> = vec![None; todo.len()];
    while let Some(joined) = tasks.join_next().await {
        let (index, row) = joined.context("a target's task stopped")?;
        rows[index] = Some(row);
    }
    let mut rows: Vec<Row> = rows.into_iter().flatten().collect();
    {
        let state = shared
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("state lock poisoned"))?;
        for target in &skipped {
            let record = state.get(command, &target.key());
            rows.push(Row {
                target: target.key(),
                result: "skipped",
                app_url: record
                    .and_then(|record| record.app_url.clone())
                    .or_else(|| known_app_url(&state, &target.key())),
                root_cause: None,
            });
        }
    }
    stdout.print(table(&rows))?;
    let failed = rows.iter().filter(|row| row.result == "failed").count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} target(s) failed (root causes above, logs in {}); run the same command again to retry only them",
            todo.len(),
            shared.logs.display()
        );
    }
    Ok(Outcome::Done)
}

/// The app URL a target's last `up` or `status` showed.
fn known_app_url(state: &State, key: &str) -> Option<String> {
    ["up", "status"]
        .iter()
        .find_map(|command| state.get(command, key)?.app_url.clone())
}

/// Runs one target and records its result.
async fn run_target(shared: &Shared, base: &aws_config::SdkConfig, target: &Target) -> Row {
    let key = target.key();
    let line = shared.progress.add(&key);
    let outcome = run_one(shared, base, target, &line).await;
    // A succeeded target's third value is a note for the table (doctor's warnings), kept out
    // of the state file, which records root causes only.
    let (ok, app_url, root_cause, note) = match outcome {
        Ok((true, url, note)) => (true, url, None, note),
        Ok((false, url, cause)) => (false, url, cause, None),
        Err(err) => (false, None, Some(format!("{err:#}")), None),
    };
    // The URL an earlier run showed, unless the app was just deleted.
    let deleted = ok && shared.command == "down";
    let app_url = app_url.filter(|_| !deleted).or_else(|| {
        shared
            .state
            .lock()
            .ok()
            .filter(|_| !deleted)
            .and_then(|state| known_app_url(&state, &key))
    });
    line.finish(ok, app_url.as_deref(), root_cause.as_deref());
    if shared.command != "status" || ok {
        let record = Record {
            ok,
            app_url: app_url.clone(),
            root_cause: root_cause.clone(),
            finished_at: state::now(),
        };
        if let Ok(mut state) = shared.state.lock() {
            state.set(shared.command, &key, record);
            if let Err(err) = state.save(&shared.state_path) {
                eprintln!("warning: {err}");
            }
        }
    }
    Row {
        target: key,
        result: if ok { "ok" } else { "failed" },
        app_url,
        root_cause: root_cause.or(note),
    }
}

/// The names of the checks a `doctor --json` report on `stdout` warns about, as a note for
/// the table (`warnings: batch claude-3-haiku, ...`); `None` without warnings or a report.
fn doctor_warnings(stdout: &str) -> Option<String> {
    let report: serde_json::Value = serde_json::from_str(stdout).ok()?;
    let names: Vec<&str> = report["checks"]
        .as_array()?
        .iter()
        .filter(|check| check["status"] == "warn")
        .filter_map(|check| check["check"].as_str())
        .collect();
    (!names.is_empty()).then(|| format!("warnings: {}", names.join(", ")))
}

/// Assumes the role and runs the child; `(ok, app URL, root cause)`.
async fn run_one(
    shared: &Shared,
    base: &aws_config::SdkConfig,
    target: &Target,
    line: &ProgressLine,
) -> anyhow::Result<(bool, Option<String>, Option<String>)> {
    line.update("assuming role");
    let credentials = runner::assume(base, target).await?;
    let work = WorkDir::create().context("creating a work directory")?;
    let passwords = work.path().join("credentials.csv");
    let args = child_args(shared, target, &passwords);
    let log = runner::log_path(&shared.logs, target, shared.command);
    let finished = runner::run_child(
        &shared.exe,
        &args,
        target,
        &credentials,
        &log,
        &|text: &str| line.update(text),
    )
    .await?;
    let ok = finished.end.code == Some(0);
    if ok && let Some(out) = &shared.credentials_csv {
        let app_url = shared
            .state
            .lock()
            .ok()
            .and_then(|state| known_app_url(&state, &target.key()));
        append_credentials(out, target, app_url.as_deref(), &passwords)?;
    }
    let cause = if ok {
        (shared.command == "doctor")
            .then(|| doctor_warnings(&finished.stdout))
            .flatten()
    } else {
        Some(finished.end.root_cause())
    };
    Ok((ok, runner::app_url(&finished.stdout), cause))
}

/// The child's arguments for `shared.command` on `target`.
fn child_args(shared: &Shared, target: &Target, passwords: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let bootstrap = shared.via == Via::Bootstrap;
    match shared.command {
        "users" => args.push("users".into()),
        command => {
            if bootstrap {
                args.push("bootstrap".into());
            }
            args.push(command.into());
        }
    }
    args.extend(["--region".into(), target.region.clone().into()]);
    args.extend(shared.flags.iter().cloned());
    match shared.command {
        "up" if !bootstrap => args.extend(["--require-approval".into(), "never".into()]),
        "down" => args.push("--force".into()),
        // The report as JSON, for the table's warnings (once: clap refuses a repeated flag).
        "doctor" if !shared.extra.iter().any(|arg| arg == "--json") => args.push("--json".into()),
        "users" => {
            args.push("add".into());
            args.push(target.email.clone().unwrap_or_default().into());
            args.push("--credentials-out".into());
            args.push(passwords.as_os_str().to_owned());
        }
        _ => {}
    }
    args.extend(shared.extra.iter().cloned());
    args
}

/// The settings given as flags (and `--config`), as flags for the child; never `--region`.
fn setting_flags(config: &ConfigArgs) -> Vec<OsString> {
    let mut flags: Vec<OsString> = Vec::new();
    if let Some(path) = &config.config {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        flags.extend(["--config".into(), path.into_os_string()]);
    }
    for setting in SETTINGS {
        if setting.key == "region" {
            continue;
        }
        if let Some(value) = config.flag(setting.key) {
            flags.push(format!("--{}", setting.flag()).into());
            flags.push(value.into());
        }
    }
    flags
}

/// Creates `dir` (mode 0700) if it does not exist.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Opens the credentials CSV for appending, mode 0600, with a header when new.
fn open_credentials_csv(path: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    let (file, is_new) = crate::output::open_private_append(path)?;
    let mut writer = csv::Writer::from_writer(file);
    if is_new {
        writer
            .write_record([
                "account_id",
                "region",
                "app_url",
                "email",
                "temporary_password",
            ])
            .and_then(|()| writer.flush().map_err(csv::Error::from))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(writer)
}

/// Appends the rows `users add` wrote for `target` (email,temporary_password) to `out`.
fn append_credentials(
    out: &Mutex<csv::Writer<std::fs::File>>,
    target: &Target,
    app_url: Option<&str>,
    passwords: &Path,
) -> anyhow::Result<()> {
    // A user that already existed gets no new password, so the file may be missing.
    let Ok(text) = std::fs::read_to_string(passwords) else {
        return Ok(());
    };
    let mut writer = out
        .lock()
        .map_err(|_| anyhow::anyhow!("credentials file lock poisoned"))?;
    for line in text.lines().skip(1) {
        let Some((email, password)) = line.split_once(',') else {
            continue;
        };
        writer
            .write_record([
                target.account.as_str(),
                target.region.as_str(),
                app_url.unwrap_or_default(),
                email,
                password,
            ])
            .context("writing the credentials CSV")?;
    }
    writer.flush().context("writing the credentials CSV")?;
    Ok(())
}

/// The final table.
fn table(rows: &[Row]) -> String {
    let header = ["TARGET", "RESULT", "APP URL", "ROOT CAUSE"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|row| {
            [
                row.target.clone(),
                row.result.to_owned(),
                row.app_url.clone().unwrap_or_else(|| "-".to_owned()),
                row.root_cause.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let width = |column: usize| {
        cells
            .iter()
            .map(|row| row[column].chars().count())
            .chain([header[column].len()])
            .max()
            .unwrap_or_default()
    };
    let widths = [width(0), width(1), width(2)];
    let mut text = format!(
        "{:w0$}  {:w1$}  {:w2$}  {}\n",
        header[0],
        header[1],
        header[2],
        header[3],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for row in &cells {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// One line per target: a live line on a terminal (its latest output), else a line when it
/// starts and one when it ends.
struct Progress {
    bars: Option<indicatif::MultiProgress>,
    started: Instant,
}

/// A target's line.
struct ProgressLine {
    key: String,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            bars: std::io::stderr()
                .is_terminal()
                .then(indicatif::MultiProgress::new),
            started: Instant::now(),
        }
    }

    fn add(&self, key: &str) -> ProgressLine {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(indicatif::ProgressBar::new_spinner());
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} {prefix} {elapsed_precise} {wide_msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(key.to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            eprintln!(
                "[{:>7.1}s] {key}: started",
                self.started.elapsed().as_secs_f64()
            );
        }
        ProgressLine {
            key: key.to_owned(),
            bar,
            started: self.started,
        }
    }
}

impl ProgressLine {
    fn update(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.chars().take(200).collect::<String>());
        }
    }

    fn finish(&self, ok: bool, app_url: Option<&str>, root_cause: Option<&str>) {
        let text = match (ok, app_url, root_cause) {
            (true, Some(url), _) => format!("ok {url}"),
            (true, None, _) => "ok".to_owned(),
            (false, _, cause) => format!("failed: {}", cause.unwrap_or("no reason")),
        };
        match &self.bar {
            Some(bar) => bar.finish_with_message(text),
            None => eprintln!(
                "[{:>7.1}s] {}: {text}",
                self.started.elapsed().as_secs_f64(),
                self.key
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctor_warnings_name_the_checks() {
        let report = r#"{"account": "1", "region": "us-east-1", "checks": [
            {"check": "credentials", "status": "pass", "reason": "account 1"},
            {"check": "batch claude-3-haiku", "status": "warn", "reason": "r", "fix": "f"},
            {"check": "role AWSServiceRoleForECS", "status": "warn", "reason": "r", "fix": "f"}
        ]}"#;
        assert_eq!(
            doctor_warnings(report).as_deref(),
            Some("warnings: batch claude-3-haiku, role AWSServiceRoleForECS")
        );
        let clean = r#"{"checks": [{"check": "credentials", "status": "pass", "reason": "r"}]}"#;
        assert_eq!(doctor_warnings(clean), None);
        assert_eq!(doctor_warnings("doctor: account 1\n"), None);
    }

    #[test]
    fn table_aligns_columns() {
        let rows = [
            Row {
                target: "111111111111/us-east-1".into(),
                result: "ok",
                app_url: Some("https://d.cloudfront.net".into()),
                root_cause: None,
            },
            Row {
                target: "222222222222/eu-west-1".into(),
                result: "failed",
                app_url: None,
                root_cause: Some("stack x: boom".into()),
            },
        ];
        assert_eq!(
            table(&rows),
            "TARGET                  RESULT  APP URL                   ROOT CAUSE\n\
             111111111111/us-east-1  ok      https://d.cloudfront.net\n\
             222222222222/eu-west-1  failed  -                         stack x: boom\n"
        );
    }
}
