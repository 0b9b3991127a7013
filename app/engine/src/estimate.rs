//! What a plan will cost, before any model is called: every selected record rendered with
//! every prompt variant, its tokens estimated from its length, times each model's catalog
//! prices; the output side is bounded by the largest answer a model may give.
//!
//! The figures are estimates and say so: token counts are characters ÷ 4 rounded up (the
//! usual rule of thumb for English text with the common tokenizers; no tokenizer is shipped),
//! the output is at most the model's maximum tokens per answer, a semantic-robustness metric's
//! perturbed prompts count as that many more calls of the record's prompt size, and judge
//! calls are not included. Reads the dataset once, record by record (memory does not grow with it); no IO
//! besides the dataset, no network.

use crate::dataset::DatasetError;
use crate::runner::{EvalPlan, selected_work};

/// Characters per token of the estimate.
pub const CHARS_PER_TOKEN: usize = 4;
/// The answer length assumed for a model whose maximum tokens per answer is not set.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 512;

/// The estimate of one column (a variant with a model).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnEstimate {
    /// The prompt variant's label.
    pub variant: String,
    /// The model's label.
    pub model: String,
    /// Estimated input tokens over the selected records.
    pub input_tokens: u64,
    /// At most this many output tokens (records × maximum tokens per answer).
    pub max_output_tokens: u64,
    /// Estimated cost in USD, when the catalog has the model's prices.
    pub usd: Option<f64>,
}

/// The estimate of a whole plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Selected records.
    pub n_records: usize,
    /// Model calls the run makes (records × variants × models, times 1 + the perturbations of
    /// a semantic-robustness metric), judges not included.
    pub n_calls: usize,
    /// Per column, in column order.
    pub columns: Vec<ColumnEstimate>,
    /// The sum over the columns with prices; `None` when no column has prices.
    pub total_usd: Option<f64>,
    /// Columns left out of the total because their model has no prices.
    pub n_unpriced: usize,
}

/// Estimated tokens of a text: characters ÷ [`CHARS_PER_TOKEN`], rounded up.
pub fn estimate_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(CHARS_PER_TOKEN) as u64
}

/// Estimates `plan`'s cost. Reads the dataset (call it on a blocking thread); a record that
/// cannot be read or rendered counts as an empty prompt (the run will fail it without a call).
pub fn estimate(plan: &EvalPlan) -> Result<Estimate, DatasetError> {
    let (n_records, works) = selected_work(&plan.dataset, plan.selection)?;
    // Each record's prompt once, and once more per perturbed prompt of a robustness metric
    // (the perturbed prompt is the same size give or take a few characters).
    let calls_per_record: u64 = if plan.task.robustness.is_some() {
        1 + fmeval_scoring::perturbation::NUM_PERTURBATIONS as u64
    } else {
        1
    };
    let mut input_tokens = vec![0u64; plan.variants.len()];
    for work in works {
        let work = work?;
        let Ok(record) = &work.record else { continue };
        for (variant_idx, variant) in plan.variants.iter().enumerate() {
            if let Ok(rendered) = variant.template.render(record) {
                input_tokens[variant_idx] += calls_per_record * estimate_tokens(&rendered.text);
            }
        }
    }
    let mut columns = Vec::with_capacity(plan.variants.len() * plan.models.len());
    for (variant_idx, variant) in plan.variants.iter().enumerate() {
        for model in &plan.models {
            let per_answer = model
                .params
                .max_tokens
                .map_or(DEFAULT_OUTPUT_TOKENS, u64::from);
            let max_output_tokens = per_answer * n_records as u64 * calls_per_record;
            let usd = match (model.price_per_1k_input, model.price_per_1k_output) {
                (Some(input), Some(output)) => Some(
                    input * input_tokens[variant_idx] as f64 / 1000.0
                        + output * max_output_tokens as f64 / 1000.0,
                ),
                _ => None,
            };
            columns.push(ColumnEstimate {
                variant: variant.label.clone(),
                model: model.label.clone(),
                input_tokens: input_tokens[variant_idx],
                max_output_tokens,
                usd,
            });
        }
    }
    let priced: Vec<f64> = columns.iter().filter_map(|column| column.usd).collect();
    Ok(Estimate {
        n_records,
        n_calls: n_records * columns.len() * calls_per_record as usize,
        total_usd: (!priced.is_empty()).then(|| priced.iter().sum()),
        n_unpriced: columns.len() - priced.len(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_characters_over_four_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        // Characters, not bytes.
        assert_eq!(estimate_tokens("éééé"), 1);
    }
}
