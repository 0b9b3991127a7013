//! Benchmark: `deployer nag`'s worst cases from issue 11 after the fix: wall time and peak
//! memory of parsing and checking hostile templates (deep nesting, many buckets with
//! properties, a 200,000-resource YAML file). Prints figures, asserts nothing.
//!
//! Run with `cargo bench -p stacks --bench nag_hostile`. Each case runs in a child process (this
//! program run again with the case's name), which reports its own `VmHWM` (the kernel's
//! high-water mark of its resident memory), so one case's peak does not hide another's.

use std::time::Instant;

use stacks::nag::{check_template, parse_template};

/// The cases: name, what it is, and the template text.
fn cases() -> Vec<(&'static str, &'static str)> {
    vec![
        ("json-deep", "JSON objects nested 80,000 levels"),
        ("yaml-deep", "YAML flow sequences nested 80,000 levels"),
        ("buckets", "16,000 S3 buckets with properties (JSON)"),
        ("yaml-200k", "200,000 resources (YAML)"),
    ]
}

fn template(case: &str) -> String {
    match case {
        "json-deep" => {
            let depth = 80_000;
            let mut text =
                String::from("{\"Resources\":{\"B\":{\"Type\":\"AWS::S3::Bucket\",\"Properties\":");
            text.push_str(&"{\"a\":".repeat(depth));
            text.push('1');
            text.push_str(&"}".repeat(depth));
            text.push_str("}}}");
            text
        }
        "yaml-deep" => {
            let depth = 80_000;
            format!(
                "Resources:\n  B:\n    Type: AWS::S3::Bucket\n    Properties: {{Tags: {}1{}}}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        }
        "buckets" => {
            let mut text = String::from("{\"Resources\":{");
            for idx in 0..16_000 {
                if idx > 0 {
                    text.push(',');
                }
                text.push_str(&format!(
                    "\"Bucket{idx}\":{{\"Type\":\"AWS::S3::Bucket\",\"Properties\":{{\"BucketName\":\"b{idx}\",\"LoggingConfiguration\":{{\"DestinationBucketName\":{{\"Ref\":\"Bucket0\"}}}},\"VersioningConfiguration\":{{\"Status\":\"Enabled\"}}}}}}"
                ));
            }
            text.push_str("}}");
            text
        }
        "yaml-200k" => {
            let mut text = String::from("Resources:\n");
            for idx in 0..200_000 {
                text.push_str(&format!(
                    "  Res{idx}:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Sub 't${{AWS::StackName}}{idx}'\n"
                ));
            }
            text
        }
        other => panic!("unknown case {other}"),
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One case in this process: prints `seconds peak_kb outcome`.
fn run_case(case: &str) {
    let text = template(case);
    let file = if case.starts_with("yaml") {
        "t.yaml"
    } else {
        "t.json"
    };
    let started = Instant::now();
    let outcome = match parse_template(file, &text) {
        Ok(parsed) => format!("checked, {} findings", check_template(&parsed).len()),
        Err(error) => {
            let message = error.to_string();
            let short: String = message.chars().take(90).collect();
            format!("refused: {short}")
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{elapsed:.3} {} {} {outcome}",
        vm_hwm_kb().unwrap_or(0),
        text.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--case") {
        run_case(&args[at + 1]);
        return;
    }
    let me = std::env::current_exe().expect("own path");
    println!("deployer nag over hostile templates (parse + check, one child process per case)");
    println!("| case | input | wall time | peak RSS | outcome |");
    println!("|---|---|---|---|---|");
    for (case, what) in cases() {
        let output = std::process::Command::new(&me)
            .args(["--case", case])
            .output()
            .expect("the case runs");
        let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let mut parts = line.splitn(4, ' ');
        let (Some(secs), Some(peak_kb), Some(bytes), Some(outcome)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            eprintln!(
                "FAILED: case {case}: {line} {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::process::exit(1);
        };
        let peak_mb = peak_kb.parse::<f64>().unwrap_or(0.0) / 1024.0;
        let input_mb = bytes.parse::<f64>().unwrap_or(0.0) / 1e6;
        println!(
            "| {what} | {input_mb:.2} MB | {:.1} ms | {peak_mb:.1} MB | {outcome} |",
            secs.parse::<f64>().unwrap_or(0.0) * 1e3
        );
    }
}
