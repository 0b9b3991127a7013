//! The cost estimate of a plan before it runs: every column (variant × model) priced from its
//! own rendered prompts, the output bounded by the answers' maximum tokens, and a semantic
//! robustness metric's perturbed prompts counted as calls of their own.

#![allow(clippy::unwrap_used)]

use engine::estimate::{DEFAULT_OUTPUT_TOKENS, estimate};
use engine::runner::Variant;
use engine::template::PromptTemplate;
use fmeval_scoring::metrics::MetricName;
use fmeval_scoring::perturbation::Perturbation;
use fmeval_scoring::sample::Selection;

use crate::helpers::*;

#[tokio::test]
async fn every_column_is_priced_from_its_own_prompts_and_robustness_multiplies_the_calls() {
    let server = start(
        model_doubles::Answer::Echo,
        model_doubles::FaultPlan::none(),
    )
    .await;
    let mut plan = squad_plan(&server, vec![MetricName::QaAccuracy], Selection::First(10));
    // Variant B is variant A and 400 more characters: 100 more tokens per record.
    let a = "Q: {question}";
    let b = format!("{a}{}", "x".repeat(400));
    plan.variants = vec![
        Variant {
            label: "A".into(),
            template: PromptTemplate::parse(a).unwrap(),
        },
        Variant {
            label: "B".into(),
            template: PromptTemplate::parse(&b).unwrap(),
        },
    ];
    plan.models[0].price_per_1k_input = Some(1.0);
    plan.models[0].price_per_1k_output = Some(2.0);
    let mut unpriced = openai_client(&server, "unpriced");
    unpriced.price_per_1k_input = None;
    unpriced.price_per_1k_output = None;
    plan.models.push(unpriced);

    let estimate_of = |plan: &engine::runner::EvalPlan| estimate(plan).unwrap();
    let plain = estimate_of(&plan);
    assert_eq!(plain.n_records, 10);
    assert_eq!(plain.n_calls, 10 * 4);
    let cells: Vec<(&str, &str)> = plain
        .columns
        .iter()
        .map(|column| (column.variant.as_str(), column.model.as_str()))
        .collect();
    assert_eq!(
        cells,
        [
            ("A", "openai:m"),
            ("A", "openai:unpriced"),
            ("B", "openai:m"),
            ("B", "openai:unpriced")
        ]
    );
    let (column_a, column_b) = (&plain.columns[0], &plain.columns[2]);
    assert_eq!(column_b.input_tokens, column_a.input_tokens + 10 * 100);
    assert_eq!(column_a.max_output_tokens, 10 * DEFAULT_OUTPUT_TOKENS);
    let expected_a =
        column_a.input_tokens as f64 / 1000.0 + 2.0 * column_a.max_output_tokens as f64 / 1000.0;
    assert!((column_a.usd.unwrap() - expected_a).abs() < 1e-9);
    assert_eq!(plain.columns[1].usd, None, "no catalog prices");
    assert_eq!(plain.n_unpriced, 2);
    let total = column_a.usd.unwrap() + column_b.usd.unwrap();
    assert!((plain.total_usd.unwrap() - total).abs() < 1e-9);

    // A robustness metric sends each record's prompt and its five perturbations.
    plan.task.robustness = Some((Perturbation::ButterFinger, "question".into()));
    let robust = estimate_of(&plan);
    assert_eq!(robust.n_calls, 6 * plain.n_calls);
    assert_eq!(robust.columns[0].input_tokens, 6 * column_a.input_tokens);
    assert_eq!(
        robust.columns[0].max_output_tokens,
        6 * column_a.max_output_tokens
    );
}
