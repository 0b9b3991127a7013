//! `llm-eval`: the evaluation app's one binary (`eval`, `preview`, `serve`).
//!
//! Thin by design: parse flags, set up tracing (`RUST_LOG`, logs on stderr, JSON lines when
//! stderr is not a terminal; the AWS config loader's own fallbacks are quiet unless asked
//! for), run
//! [`crate::cli::run`] and turn its result into an exit code in one place.

mod batch_cli;
mod cli;

use clap::Parser;

fn main() {
    let cli = match crate::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = error.print();
            std::process::exit(if error.use_stderr() { 2 } else { 0 });
        }
    };
    // The server logs each request; the CLI only what goes wrong.
    let default_filter = match cli.command {
        crate::cli::Command::Serve(_) => "info,aws_config=error",
        _ => "warn,aws_config=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        builder.with_ansi(true).init();
    } else {
        // Not a terminal (ECS, CloudWatch, a file): one JSON object per line, with the span
        // fields (request id, method, path) of each event.
        builder.json().with_current_span(true).init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            std::process::exit(2);
        }
    };
    let code = match runtime.block_on(crate::cli::run(cli)) {
        Ok(exit) => exit.code(),
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.chain().any(is_record_too_large) {
                eprintln!("hint: --max-record-size raises the limit");
            }
            2
        }
    };
    // Abandoned in-flight calls (cancel) must not delay the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}

/// Whether `cause` is a dataset record over the record size limit (the engine's error names
/// no flag; the CLI adds it).
fn is_record_too_large(cause: &(dyn std::error::Error + 'static)) -> bool {
    use engine::dataset::DatasetError;
    use engine::runner::RunError;
    matches!(
        cause.downcast_ref::<DatasetError>(),
        Some(DatasetError::RecordTooLarge { .. })
    ) || matches!(
        cause.downcast_ref::<RunError>(),
        Some(RunError::Dataset(DatasetError::RecordTooLarge { .. }))
    )
}
