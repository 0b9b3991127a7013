//! Benchmark: the nag pack over generated templates of growing size (prints figures).
//!
//! Run with `cargo bench -p stacks --bench nag`. Each size is parsed once and checked
//! several times; the per-resource time should stay flat (linear growth).

use std::time::Instant;

use stacks::nag::{check_template, parse_template};

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

/// Parses and checks our own synthesized stacks (default configuration, then all 16 toggle
/// combinations); the target is well under 10 ms for the default configuration.
fn our_stacks() {
    const ROUNDS: u32 = 20;
    let mut texts = Vec::new();
    for cfg in stacks::StackConfig::default().toggle_combinations() {
        let Ok(synthesized) = stacks::synth_all(&cfg) else {
            eprintln!("synthesis failed for {}", cfg.toggle_label());
            std::process::exit(1);
        };
        let is_default = cfg == stacks::StackConfig::default();
        for stack in synthesized {
            texts.push((
                is_default,
                String::from_utf8_lossy(&stack.template.to_json_bytes()).into_owned(),
            ));
        }
    }
    for (label, only_default) in [
        ("our stacks, default config", true),
        ("our stacks, all 16 combinations", false),
    ] {
        let start = Instant::now();
        let mut n_findings = 0;
        for _ in 0..ROUNDS {
            n_findings = 0;
            for (_, text) in texts
                .iter()
                .filter(|(is_default, _)| *is_default || !only_default)
            {
                if let Ok(parsed) = parse_template("stack.json", text) {
                    n_findings += check_template(&parsed).len();
                }
            }
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(ROUNDS);
        println!("{label}: parse + check {ms:.2} ms, {n_findings} findings (all suppressed)");
    }
}

fn main() {
    our_stacks();
    const ROUNDS: u32 = 5;
    println!(
        "{:>9} {:>12} {:>12} {:>14} {:>10}",
        "resources", "parse (ms)", "check (ms)", "check/res (us)", "findings"
    );
    for n_resources in [250, 500, 1000, 2000] {
        let yaml = generated_template(n_resources);
        let start = Instant::now();
        let parsed = match parse_template("generated.yaml", &yaml) {
            Ok(parsed) => parsed,
            Err(error) => {
                eprintln!("generated template does not parse: {error}");
                std::process::exit(1);
            }
        };
        let parse_ms = start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let mut n_findings = 0;
        for _ in 0..ROUNDS {
            n_findings = check_template(&parsed).len();
        }
        let check_ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(ROUNDS);
        let per_resource_us = check_ms * 1e3 / n_resources as f64;
        println!(
            "{n_resources:>9} {parse_ms:>12.2} {check_ms:>12.2} {per_resource_us:>14.2} {n_findings:>10}"
        );
    }
}
