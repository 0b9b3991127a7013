//! Synthesizes (and validates) all stacks for every toggle combination and prints the time per
//! full synth, plus the time to render JSON and YAML. Target: under 20 ms per full synth in a
//! release build. Run with `cargo bench -p stacks --bench synth`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use stacks::{StackConfig, synth_all};

fn main() {
    let configs: Vec<StackConfig> = StackConfig::default().toggle_combinations().collect();
    // Warm up allocator and caches.
    for cfg in &configs {
        black_box(synth_all(cfg).map(|stacks| stacks.len()).unwrap_or(0));
    }
    let rounds = 50;
    let mut synth_total = Duration::ZERO;
    let mut render_total = Duration::ZERO;
    let mut n_synths = 0u32;
    let mut n_failures = 0u32;
    for _ in 0..rounds {
        for cfg in &configs {
            let start = Instant::now();
            let result = synth_all(cfg);
            synth_total += start.elapsed();
            n_synths += 1;
            match result {
                Ok(stacks) => {
                    let start = Instant::now();
                    for stack in &stacks {
                        black_box(stack.template.to_json_bytes());
                        black_box(
                            stack
                                .template
                                .to_yaml_bytes()
                                .map(|bytes| bytes.len())
                                .unwrap_or(0),
                        );
                    }
                    render_total += start.elapsed();
                }
                Err(err) => {
                    n_failures += 1;
                    eprintln!("{}: {err}", cfg.toggle_label());
                }
            }
        }
    }
    let per_synth = synth_total / n_synths;
    let per_render = render_total / n_synths;
    println!(
        "configs: {} toggle combinations x {rounds} rounds = {n_synths} full synths",
        configs.len()
    );
    println!("synth + validate: {per_synth:?} per full synth");
    println!("render JSON + YAML: {per_render:?} per full synth");
    println!(
        "total: {:?} per full synth (target < 20 ms)",
        per_synth + per_render
    );
    if n_failures > 0 {
        println!("FAILED: {n_failures} synths returned errors");
        std::process::exit(1);
    }
}
