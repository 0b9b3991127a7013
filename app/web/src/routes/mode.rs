//! The evaluation form's choice of mode (online, or Bedrock batch inference): whether batch
//! mode is set up here, a suggestion when records × models is large, and both cost estimates
//! per selected model. Pure: a function of the catalog, the dataset's row and the form.

use engine::catalog::Catalog;
use store::DatasetRow;

/// Evaluations (records × models) from which the form suggests batch mode.
pub const SUGGEST_BATCH_FROM: usize = 10_000;

/// Output tokens per answer the estimates assume.
pub const ASSUMED_OUTPUT_TOKENS: u64 = 100;

/// One model's estimated cost in both modes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeEstimate {
    /// The model as selected.
    pub model: String,
    /// Online cost, or why there is none.
    pub online: String,
    /// Batch cost, or why the model cannot run in batch mode.
    pub batch: String,
}

/// What the form shows about the mode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModeChoice {
    /// Whether batch runs can be started on this server.
    pub enabled: bool,
    /// Selected records × selected models.
    pub evaluations: usize,
    /// Whether to suggest batch mode.
    pub suggest: bool,
    /// Per selected model.
    pub estimates: Vec<ModeEstimate>,
}

/// The mode part of the form for `models` over `n_selected` records of `dataset`.
pub fn mode_choice(
    catalog: &Catalog,
    dataset: Option<&DatasetRow>,
    n_selected: usize,
    template_len: usize,
    models: &[String],
    enabled: bool,
) -> ModeChoice {
    let evaluations = n_selected.saturating_mul(models.len());
    // About four characters a token: the record's share of the file plus the template.
    let input_tokens = dataset
        .filter(|dataset| dataset.n_records > 0)
        .map(|dataset| (dataset.size_bytes / dataset.n_records as u64 + template_len as u64) / 4);
    let usd = |value: f64| {
        if value < 0.01 {
            "< $0.01".to_owned()
        } else {
            format!("${value:.2}")
        }
    };
    let estimates = models
        .iter()
        .map(|model| {
            let spec = catalog.resolve(model).ok();
            let n = n_selected as f64;
            let cost = |per_in: f64, per_out: f64, tokens: u64| {
                n * (tokens as f64 / 1000.0 * per_in
                    + ASSUMED_OUTPUT_TOKENS as f64 / 1000.0 * per_out)
            };
            let online = match (&spec, input_tokens) {
                (Some(spec), Some(tokens)) => {
                    match (spec.price_per_1k_input, spec.price_per_1k_output) {
                        (Some(per_in), Some(per_out)) => usd(cost(per_in, per_out, tokens)),
                        _ => "no price in the catalog".to_owned(),
                    }
                }
                _ => "–".to_owned(),
            };
            let batch = match &spec {
                Some(spec) if spec.provider.as_str() != "bedrock" => {
                    "not a Bedrock model".to_owned()
                }
                Some(spec) => match (spec.batch_price, input_tokens) {
                    (None, _) => "no batch support (no batch price)".to_owned(),
                    (Some(price), Some(tokens)) => {
                        usd(cost(price.per_1k_input, price.per_1k_output, tokens))
                    }
                    (Some(_), None) => "–".to_owned(),
                },
                None => "unknown model".to_owned(),
            };
            ModeEstimate {
                model: model.clone(),
                online,
                batch,
            }
        })
        .collect();
    ModeChoice {
        enabled,
        evaluations,
        suggest: enabled && evaluations >= SUGGEST_BATCH_FROM,
        estimates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(n_records: usize, size_bytes: u64) -> DatasetRow {
        DatasetRow {
            id: "d".into(),
            owner: store::UserId::local(),
            name: "d.jsonl".into(),
            format: "jsonl".into(),
            size_bytes,
            n_records,
            fields: Vec::new(),
            created: String::new(),
            path: Default::default(),
        }
    }

    #[test]
    fn estimates_both_modes_and_suggests_batch_for_big_runs() {
        let catalog = Catalog::embedded();
        let models = vec![
            "claude-3-haiku".to_owned(),
            "claude-3-sonnet".to_owned(),
            "gpt-4o-mini".to_owned(),
        ];
        // 20,000 records of 4,000 bytes: 1,000 input tokens each, 100 output tokens assumed.
        let data = dataset(20_000, 80_000_000);
        let choice = mode_choice(&catalog, Some(&data), 20_000, 0, &models, true);
        assert_eq!(choice.evaluations, 60_000);
        assert!(choice.suggest);
        // Haiku: 20,000 × (1 × 0.00025 + 0.1 × 0.00125) = $7.50 online, half in batch.
        assert_eq!(choice.estimates[0].online, "$7.50");
        assert_eq!(choice.estimates[0].batch, "$3.75");
        assert_eq!(
            choice.estimates[1].batch,
            "no batch support (no batch price)"
        );
        assert_eq!(choice.estimates[2].batch, "not a Bedrock model");
        let small = mode_choice(&catalog, Some(&data), 100, 0, &models[..1], true);
        assert!(!small.suggest);
        let disabled = mode_choice(&catalog, Some(&data), 20_000, 0, &models, false);
        assert!(!disabled.suggest);
    }
}
