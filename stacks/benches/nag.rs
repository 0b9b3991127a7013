//! Benchmark: the nag pack over our synthesized stacks and over generated templates of growing
//! size (prints figures, asserts nothing).
//!
//! Run with `cargo bench -p stacks --bench nag`. Targets: under 10 ms for our stacks (what
//! `deployer nag` checks: the templates of one configuration), and linear growth up to a
//! 1,000-resource template (the time per resource stays flat as the template grows). Every
//! figure is a median over several rounds, so one descheduling on a shared machine does not
//! decide it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use stacks::nag::{ParsedTemplate, check_template, parse_template, report};
use stacks::{StackConfig, synth_all};

/// A template with `n_resources` resources cycling through the kinds the rules look at.
fn generated_template(n_resources: usize) -> String {
    let mut yaml = String::from(
        "Parameters:\n  Cidr: {Type: String, Default: 10.0.0.0/16}\nConditions:\n  Prod: !Equals [a, b]\nResources:\n",
    );
    for resource_idx in 0..n_resources {
        let body = match resource_idx % 8 {
            0 => "{Type: AWS::S3::Bucket, Properties: {LoggingConfiguration: {DestinationBucketName: !Ref Res0}}}".to_owned(),
            1 => format!("{{Type: AWS::S3::BucketPolicy, Properties: {{Bucket: !Ref Res{}, PolicyDocument: {{Statement: [{{Effect: Deny, Action: 's3:*', Principal: '*', Condition: {{Bool: {{'aws:SecureTransport': 'false'}}}}, Resource: [!GetAtt Res{0}.Arn, !Sub '${{Res{0}.Arn}}/*']}}]}}}}}}", resource_idx - 1),
            2 => "{Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: app, SecurityGroupIngress: [{CidrIp: !Ref Cidr, IpProtocol: tcp, FromPort: 443, ToPort: 443}]}}".to_owned(),
            3 => "{Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {}, Policies: [{PolicyName: p, PolicyDocument: {Statement: [{Effect: Allow, Action: ['s3:GetObject', 'logs:*'], Resource: '*'}]}}]}}".to_owned(),
            4 => "{Type: AWS::ECS::TaskDefinition, Properties: {ContainerDefinitions: [{Name: app, Image: x, LogConfiguration: {LogDriver: awslogs}, Environment: !If [Prod, [], !Ref AWS::NoValue]}]}}".to_owned(),
            5 => "{Type: AWS::Lambda::Function, Properties: {Runtime: python3.12, Handler: index.handler, Code: {ZipFile: x}, Role: r}}".to_owned(),
            6 => "{Type: AWS::CloudFront::Distribution, Properties: {DistributionConfig: {Enabled: true, ViewerCertificate: {CloudFrontDefaultCertificate: true}, Origins: [{Id: o, DomainName: x.example.com, CustomOriginConfig: {OriginProtocolPolicy: https-only, OriginSSLProtocols: [TLSv1.2]}}]}}}".to_owned(),
            _ => "{Type: AWS::Cognito::UserPool, Properties: {MfaConfiguration: 'ON', UserPoolTier: PLUS}}".to_owned(),
        };
        yaml.push_str(&format!("  Res{resource_idx}: {body}\n"));
    }
    yaml
}

/// The median of `rounds` timings of `work`.
fn median_of(rounds: usize, mut work: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Exits with a message: the benchmark cannot measure what it is meant to.
fn fail(message: &str) -> ! {
    eprintln!("FAILED: {message}");
    std::process::exit(1);
}

/// The JSON text of every stack of `cfg`, as `deployer nag` renders it before parsing.
fn stack_texts(cfg: &StackConfig) -> Vec<String> {
    let Ok(synthesized) = synth_all(cfg) else {
        fail(&format!("synthesis failed for {}", cfg.toggle_label()));
    };
    synthesized
        .iter()
        .map(|stack| String::from_utf8_lossy(&stack.template.to_json_bytes()).into_owned())
        .collect()
}

fn parse_all(texts: &[String]) -> Vec<ParsedTemplate> {
    texts
        .iter()
        .map(|text| {
            parse_template("stack.json", text)
                .unwrap_or_else(|error| fail(&format!("our template does not parse: {error}")))
        })
        .collect()
}

/// Our own stacks: the default configuration (what `deployer nag` checks) and every toggle
/// combination (`deployer nag --all-combinations`).
fn our_stacks() {
    const ROUNDS: usize = 31;
    let default_cfg = StackConfig::default();
    let combinations: Vec<StackConfig> = default_cfg.toggle_combinations().collect();
    let default_texts = stack_texts(&default_cfg);
    let all_texts: Vec<String> = combinations.iter().flat_map(stack_texts).collect();
    println!("our stacks (median of {ROUNDS} rounds; target < 10 ms for one configuration)");
    for (label, texts) in [
        ("default configuration".to_owned(), &default_texts),
        (
            format!("all {} toggle combinations", combinations.len()),
            &all_texts,
        ),
    ] {
        let summary = report::summarize(
            &parse_all(texts)
                .iter()
                .flat_map(check_template)
                .collect::<Vec<_>>(),
        );
        let parse_check = median_of(ROUNDS, || {
            for text in texts {
                if let Ok(parsed) = parse_template("stack.json", text) {
                    black_box(check_template(&parsed));
                }
            }
        });
        println!(
            "  {label:<30} {:>2} templates: parse + check {:>6.2} ms; findings: {} errors, {} warnings, {} suppressed",
            texts.len(),
            ms(parse_check),
            summary.errors,
            summary.warnings,
            summary.suppressed,
        );
    }
    // What `deployer nag` does end to end (minus process start and printing): synthesize,
    // render JSON, parse, check.
    let end_to_end = median_of(ROUNDS, || {
        let texts = stack_texts(&default_cfg);
        for parsed in parse_all(&texts) {
            black_box(check_template(&parsed));
        }
    });
    println!(
        "  {:<30} {:>2} templates: synth + render + parse + check {:.2} ms",
        "default configuration",
        default_texts.len(),
        ms(end_to_end)
    );
}

/// Generated templates of growing size, as YAML (short-form tags), pretty JSON and minified
/// JSON (one line, as some tools write it): the time per resource should stay flat.
fn generated() {
    const ROUNDS: usize = 7;
    const SIZES: [usize; 4] = [250, 500, 1000, 2000];
    println!(
        "generated templates (median of {ROUNDS} rounds; target: linear growth, per-resource time flat up to 1,000 resources)"
    );
    println!(
        "{:<9} {:>9} {:>11} {:>11} {:>11} {:>17} {:>15} {:>9}",
        "format",
        "resources",
        "parse (ms)",
        "check (ms)",
        "total (ms)",
        "per resource (us)",
        "vs 250 (x/res)",
        "findings"
    );
    for format in ["yaml", "json", "json-min"] {
        let mut base_per_resource = None;
        for n_resources in SIZES {
            let yaml = generated_template(n_resources);
            let parsed = parse_template("generated.yaml", &yaml).unwrap_or_else(|error| {
                fail(&format!("generated template does not parse: {error}"))
            });
            let text = match format {
                "yaml" => yaml,
                "json" => serde_json::to_string_pretty(parsed.root()).unwrap_or_default(),
                _ => serde_json::to_string(parsed.root()).unwrap_or_default(),
            };
            let parsed = parse_template("generated", &text).unwrap_or_else(|error| {
                fail(&format!(
                    "generated {format} template does not parse: {error}"
                ))
            });
            let n_findings = check_template(&parsed).len();
            let parse = median_of(ROUNDS, || {
                black_box(parse_template("generated", &text).ok());
            });
            let check = median_of(ROUNDS, || {
                black_box(check_template(&parsed));
            });
            let total = parse + check;
            let per_resource_us = total.as_secs_f64() * 1e6 / n_resources as f64;
            let base = *base_per_resource.get_or_insert(per_resource_us);
            println!(
                "{format:<9} {n_resources:>9} {:>11.2} {:>11.2} {:>11.2} {per_resource_us:>17.2} {:>15.2} {n_findings:>9}",
                ms(parse),
                ms(check),
                ms(total),
                per_resource_us / base,
            );
        }
    }
}

fn main() {
    our_stacks();
    generated();
}
