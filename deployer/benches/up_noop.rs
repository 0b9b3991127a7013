//! Wall time and AWS API calls of a no-change `deployer up` against a local moto server.
//!
//! Deploys the network stack once (`DEPLOY_PROMPT_APP=no`, `DEPLOY_SAGEMAKER_DOMAIN=no`: what
//! moto's CloudFormation can create), then runs `up` again several times with nothing changed
//! and prints the median wall time (process start to exit, the real release binary) and the
//! number of HTTP requests the deployer sent, counted by a byte-forwarding proxy in front of
//! moto. Target: under 10 s. Run with `cargo bench -p deployer --bench up_noop`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use model_doubles::moto::Moto;

const ROUNDS: usize = 5;

/// Forwards every connection to `target` and counts HTTP/1.1 request lines sent by clients.
fn counting_proxy(target: String, requests: Arc<AtomicUsize>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let requests = requests.clone();
            // A connection that cannot be split is dropped, like one that cannot connect.
            let (Ok(mut client_read), Ok(mut server_write)) =
                (client.try_clone(), server.try_clone())
            else {
                continue;
            };
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let needle = b" HTTP/1.1\r\n";
                let mut carry: Vec<u8> = Vec::new();
                let mut buffer = [0u8; 16 * 1024];
                while let Ok(n) = client_read.read(&mut buffer) {
                    if n == 0 || server_write.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                    carry.extend_from_slice(&buffer[..n]);
                    let found = carry
                        .windows(needle.len())
                        .filter(|window| window == needle)
                        .count();
                    requests.fetch_add(found, Ordering::Relaxed);
                    let keep = carry.len().min(needle.len() - 1);
                    carry.drain(..carry.len() - keep);
                }
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
            });
        }
    });
    Ok(url)
}

fn up(endpoint: &str, dir: &std::path::Path) -> Duration {
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir)
        .args(["up", "--require-approval", "never"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("DEPLOY_PROMPT_APP", "no")
        .env("DEPLOY_SAGEMAKER_DOMAIN", "no")
        .output()
        .expect("deployer runs");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "deployer up failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let moto = runtime.block_on(Moto::start());
    let target = moto.url().trim_start_matches("http://").to_owned();
    let requests = Arc::new(AtomicUsize::new(0));
    let endpoint = counting_proxy(target, requests.clone()).expect("proxy starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let create = up(&endpoint, dir.path());
    let create_calls = requests.swap(0, Ordering::Relaxed);
    let mut times = Vec::with_capacity(ROUNDS);
    let mut calls = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        times.push(up(&endpoint, dir.path()));
        calls.push(requests.swap(0, Ordering::Relaxed));
    }
    times.sort();
    println!(
        "first up (creates the network stack, 24 resources): {:.2} s, {create_calls} AWS API calls",
        create.as_secs_f64()
    );
    println!(
        "no-change up: median {:.3} s over {ROUNDS} runs (min {:.3} s, max {:.3} s), {} AWS API calls each",
        times[ROUNDS / 2].as_secs_f64(),
        times[0].as_secs_f64(),
        times[ROUNDS - 1].as_secs_f64(),
        calls[0]
    );
}
