//! The model catalog: which models exist under which alias, with display names, default
//! inference parameters, context limits and prices. The built-in catalog is `app/models.toml`,
//! embedded in the binary; a user file overrides entries by alias and adds new ones.
//!
//! Invariants: resolving never does IO and never panics; a model that is not catalogued can
//! still be named as `provider:model-id` (it gets the default parameters and no price, so its
//! cost is `None`, never a guess); model ids may themselves contain `:` (Bedrock versions), so
//! a spec is split on its first `:` only.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::providers::sagemaker::SageMakerFormat;
use crate::providers::{Generation, InferenceParams, Latency, ServiceTier};

/// The embedded catalog source.
const EMBEDDED: &str = include_str!("../../models.toml");

/// Which API serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Amazon Bedrock (Converse).
    Bedrock,
    /// A SageMaker real-time endpoint.
    SageMaker,
    /// An OpenAI-compatible chat completions API.
    OpenAi,
}

impl ProviderKind {
    /// Every provider, in the order error messages list them.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::Bedrock,
        ProviderKind::SageMaker,
        ProviderKind::OpenAi,
    ];

    /// The name used in specs: `bedrock`, `sagemaker`, `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::SageMaker => "sagemaker",
            ProviderKind::OpenAi => "openai",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = ();

    fn from_str(name: &str) -> Result<ProviderKind, ()> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or(())
    }
}

fn provider_list() -> String {
    ProviderKind::ALL.map(ProviderKind::as_str).join(", ")
}

/// A resolved model: what to call and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// What the user wrote (alias or `provider:model-id`).
    pub spec: String,
    /// The provider.
    pub provider: ProviderKind,
    /// The provider's model id (Bedrock id, SageMaker endpoint name, OpenAI model).
    pub model_id: String,
    /// Display name.
    pub display_name: String,
    /// Inference parameters (catalog defaults merged with the entry's).
    pub params: InferenceParams,
    /// Context window, when known.
    pub context_tokens: Option<u32>,
    /// USD per 1,000 input tokens, when known.
    pub price_per_1k_input: Option<f64>,
    /// USD per 1,000 output tokens, when known.
    pub price_per_1k_output: Option<f64>,
    /// Bedrock batch inference prices (USD per 1,000 input and output tokens); `None`: the
    /// model does not run in batch mode.
    pub batch_price: Option<BatchPrice>,
    /// Bedrock's Flex and Priority tier prices, when the catalog has them.
    pub tier_prices: TierPrices,
    /// The container format of a SageMaker endpoint (`None`: text generation).
    pub sagemaker_format: Option<SageMakerFormat>,
}

impl ModelSpec {
    /// USD per 1,000 input and output tokens of a call in `tier` (`None`: the standard
    /// on-demand price): each `None` when the catalog does not know it, never a guess.
    pub fn prices(&self, tier: Option<ServiceTier>) -> (Option<f64>, Option<f64>) {
        let tiered = |price: Option<BatchPrice>| {
            (
                price.map(|price| price.per_1k_input),
                price.map(|price| price.per_1k_output),
            )
        };
        match tier {
            None | Some(ServiceTier::Default) => {
                (self.price_per_1k_input, self.price_per_1k_output)
            }
            Some(ServiceTier::Flex) => tiered(self.tier_prices.flex),
            Some(ServiceTier::Priority) => tiered(self.tier_prices.priority),
        }
    }

    /// The cost of one call: needs both prices and both token counts.
    pub fn cost(&self, generation: &Generation) -> Option<f64> {
        let input = generation.input_tokens? as f64 / 1000.0 * self.price_per_1k_input?;
        let output = generation.output_tokens? as f64 / 1000.0 * self.price_per_1k_output?;
        Some(input + output)
    }
}

/// The Bedrock batch inference prices of a model (`batch_price_per_1k_input` and
/// `batch_price_per_1k_output` in the catalog).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchPrice {
    /// USD per 1,000 input tokens.
    pub per_1k_input: f64,
    /// USD per 1,000 output tokens.
    pub per_1k_output: f64,
}

impl BatchPrice {
    /// The cost of `input` and `output` tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        input as f64 / 1000.0 * self.per_1k_input + output as f64 / 1000.0 * self.per_1k_output
    }
}

/// A Bedrock model's prices in the Flex and Priority service tiers (catalog columns
/// `flex_price_per_1k_input`/`_output` and `priority_price_per_1k_input`/`_output`; the same
/// two figures as a batch price).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TierPrices {
    /// The Flex tier's prices.
    pub flex: Option<BatchPrice>,
    /// The Priority tier's prices.
    pub priority: Option<BatchPrice>,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// Short name used on the command line.
    pub alias: String,
    /// The provider.
    pub provider: ProviderKind,
    /// The provider's model id.
    pub model_id: String,
    /// Display name.
    pub display_name: String,
    /// The entry's own parameters (merged over the catalog defaults when resolved).
    pub params: InferenceParams,
    /// Context window.
    pub context_tokens: Option<u32>,
    /// USD per 1,000 input tokens.
    pub price_per_1k_input: Option<f64>,
    /// USD per 1,000 output tokens.
    pub price_per_1k_output: Option<f64>,
    /// Bedrock batch inference prices; `None`: no batch mode.
    pub batch_price: Option<BatchPrice>,
    /// Bedrock's Flex and Priority tier prices.
    pub tier_prices: TierPrices,
    /// SageMaker container format.
    pub sagemaker_format: Option<SageMakerFormat>,
}

/// A catalog problem or a spec that does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog file could not be read.
    #[error("cannot read catalog {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The catalog is not valid TOML of the expected shape (the source names line and column).
    #[error("invalid catalog {}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        #[source]
        source: toml::de::Error,
    },
    /// An entry breaks a rule.
    #[error("{}: model `{alias}`: {problem}", .path.display())]
    InvalidEntry {
        /// The file.
        path: PathBuf,
        /// The entry's alias.
        alias: String,
        /// What is wrong.
        problem: String,
    },
    /// The spec names a provider that does not exist.
    #[error(
        "unknown provider `{provider}` in `{spec}` (providers: {})",
        provider_list()
    )]
    UnknownProvider {
        /// What the user wrote.
        spec: String,
        /// The part before the first `:`.
        provider: String,
    },
    /// The spec is neither `provider:model-id` nor an alias.
    #[error(
        "`{spec}` is neither `provider:model-id` (providers: {}) nor a catalog alias{}",
        provider_list(),
        suggestion(.close_aliases)
    )]
    UnknownModel {
        /// What the user wrote.
        spec: String,
        /// Aliases that look alike.
        close_aliases: Vec<String>,
    },
    /// `provider:` with nothing after the colon.
    #[error("`{spec}` has no model id after `{provider}:`")]
    EmptyModelId {
        /// What the user wrote.
        spec: String,
        /// The provider.
        provider: ProviderKind,
    },
}

fn suggestion(close_aliases: &[String]) -> String {
    if close_aliases.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", close_aliases.join(", "))
    }
}

/// The model catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    defaults: InferenceParams,
    entries: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    defaults: Option<DefaultsFile>,
    #[serde(default, rename = "model")]
    models: Vec<ModelFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    #[serde(default)]
    params: ParamsFile,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    top_p: Option<f32>,
    #[serde(default)]
    stop_sequences: Vec<String>,
    service_tier: Option<ServiceTier>,
    latency: Option<Latency>,
}

impl From<ParamsFile> for InferenceParams {
    fn from(params: ParamsFile) -> InferenceParams {
        InferenceParams {
            temperature: params.temperature,
            max_tokens: params.max_tokens,
            top_p: params.top_p,
            stop_sequences: params.stop_sequences,
            service_tier: params.service_tier,
            latency: params.latency,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    alias: String,
    provider: ProviderKind,
    model_id: String,
    name: Option<String>,
    context_tokens: Option<u32>,
    price_per_1k_input: Option<f64>,
    price_per_1k_output: Option<f64>,
    batch_price_per_1k_input: Option<f64>,
    batch_price_per_1k_output: Option<f64>,
    flex_price_per_1k_input: Option<f64>,
    flex_price_per_1k_output: Option<f64>,
    priority_price_per_1k_input: Option<f64>,
    priority_price_per_1k_output: Option<f64>,
    #[serde(default)]
    params: ParamsFile,
    sagemaker: Option<SageMakerFormat>,
}

/// The largest `--catalog` file read (a catalog of hundreds of models is a few KB).
pub const MAX_CATALOG_SIZE: crate::limits::ByteSize = crate::limits::ByteSize(1 << 20);

impl Catalog {
    /// The built-in catalog (`app/models.toml`), parsed once per process.
    pub fn embedded() -> Catalog {
        static PARSED: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        PARSED
            .get_or_init(|| {
                Catalog::parse(EMBEDDED, Path::new("models.toml"))
                    .expect("the embedded catalog is valid: a unit test parses it")
            })
            .clone()
    }

    /// The built-in catalog overridden and extended by a user file: entries with the same alias
    /// are replaced, others added; the file's `[defaults]`, when present, replace the built-in.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let source = crate::limits::read_text_capped(path, MAX_CATALOG_SIZE, "--catalog").map_err(
            |error| CatalogError::Read {
                path: path.to_path_buf(),
                source: match error {
                    crate::limits::ReadError::Capped(capped::ReadError::Io { source, .. }) => {
                        source
                    }
                    crate::limits::ReadError::Capped(capped::ReadError::TooLarge {
                        limit, ..
                    }) => std::io::Error::other(format!(
                        "larger than {limit}, more than any model catalog"
                    )),
                    other => std::io::Error::other(other.to_string()),
                },
            },
        )?;
        let user = Catalog::parse_file(&source, path)?;
        let mut catalog = Catalog::embedded();
        if let Some(defaults) = user.0 {
            catalog.defaults = defaults;
        }
        for entry in user.1 {
            match catalog
                .entries
                .iter_mut()
                .find(|existing| existing.alias == entry.alias)
            {
                Some(existing) => *existing = entry,
                None => catalog.entries.push(entry),
            }
        }
        Ok(catalog)
    }

    /// Parses a catalog on its own (no embedded entries); `path` is for messages.
    pub fn parse(source: &str, path: &Path) -> Result<Catalog, CatalogError> {
        let (defaults, entries) = Catalog::parse_file(source, path)?;
        Ok(Catalog {
            defaults: defaults.unwrap_or_default(),
            entries,
        })
    }

    #[allow(clippy::type_complexity)]
    fn parse_file(
        source: &str,
        path: &Path,
    ) -> Result<(Option<InferenceParams>, Vec<CatalogEntry>), CatalogError> {
        // A BOM is legal in a UTF-8 file but not in TOML.
        let source = source.strip_prefix('\u{feff}').unwrap_or(source);
        let file: CatalogFile = toml::from_str(source).map_err(|source| CatalogError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |alias: &str, problem: String| CatalogError::InvalidEntry {
            path: path.to_path_buf(),
            alias: alias.to_owned(),
            problem,
        };
        let mut entries: Vec<CatalogEntry> = Vec::with_capacity(file.models.len());
        for model in file.models {
            let alias = model.alias.trim().to_owned();
            if alias.is_empty() || alias.contains(':') || alias.contains(char::is_whitespace) {
                return Err(invalid(
                    &alias,
                    "an alias must be non-empty, without `:` or spaces".into(),
                ));
            }
            if entries.iter().any(|entry| entry.alias == alias) {
                return Err(invalid(&alias, "the alias appears twice".into()));
            }
            if model.model_id.trim().is_empty() {
                return Err(invalid(&alias, "`model_id` is empty".into()));
            }
            for (field, price) in [
                ("price_per_1k_input", model.price_per_1k_input),
                ("price_per_1k_output", model.price_per_1k_output),
                ("batch_price_per_1k_input", model.batch_price_per_1k_input),
                ("batch_price_per_1k_output", model.batch_price_per_1k_output),
                ("flex_price_per_1k_input", model.flex_price_per_1k_input),
                ("flex_price_per_1k_output", model.flex_price_per_1k_output),
                (
                    "priority_price_per_1k_input",
                    model.priority_price_per_1k_input,
                ),
                (
                    "priority_price_per_1k_output",
                    model.priority_price_per_1k_output,
                ),
            ] {
                if price.is_some_and(|price| !price.is_finite() || price < 0.0) {
                    return Err(invalid(
                        &alias,
                        format!("`{field}` must be a finite number ≥ 0"),
                    ));
                }
            }
            let batch_price = match (
                model.batch_price_per_1k_input,
                model.batch_price_per_1k_output,
            ) {
                (None, None) => None,
                (Some(per_1k_input), Some(per_1k_output)) => {
                    if model.provider != ProviderKind::Bedrock {
                        return Err(invalid(
                            &alias,
                            "batch prices on a model whose provider is not bedrock (batch inference is Bedrock's)".into(),
                        ));
                    }
                    Some(BatchPrice {
                        per_1k_input,
                        per_1k_output,
                    })
                }
                _ => {
                    return Err(invalid(
                        &alias,
                        "`batch_price_per_1k_input` and `batch_price_per_1k_output` go together"
                            .into(),
                    ));
                }
            };
            let bedrock_only = |prices: (Option<f64>, Option<f64>), name: &str| match prices {
                (None, None) => Ok(None),
                (Some(per_1k_input), Some(per_1k_output))
                    if model.provider == ProviderKind::Bedrock =>
                {
                    Ok(Some(BatchPrice {
                        per_1k_input,
                        per_1k_output,
                    }))
                }
                (Some(_), Some(_)) => Err(invalid(
                    &alias,
                    format!(
                        "{name} tier prices on a model whose provider is not bedrock (service tiers are Bedrock's)"
                    ),
                )),
                _ => Err(invalid(
                    &alias,
                    format!(
                        "`{name}_price_per_1k_input` and `{name}_price_per_1k_output` go together"
                    ),
                )),
            };
            let tier_prices = TierPrices {
                flex: bedrock_only(
                    (
                        model.flex_price_per_1k_input,
                        model.flex_price_per_1k_output,
                    ),
                    "flex",
                )?,
                priority: bedrock_only(
                    (
                        model.priority_price_per_1k_input,
                        model.priority_price_per_1k_output,
                    ),
                    "priority",
                )?,
            };
            if model.provider != ProviderKind::Bedrock
                && (model.params.service_tier.is_some() || model.params.latency.is_some())
            {
                return Err(invalid(
                    &alias,
                    "`service_tier` and `latency` are Amazon Bedrock options; this model's provider is not bedrock".into(),
                ));
            }
            if let Some(format) = &model.sagemaker {
                if model.provider != ProviderKind::SageMaker {
                    return Err(invalid(
                        &alias,
                        "`sagemaker` settings on a model whose provider is not sagemaker".into(),
                    ));
                }
                format
                    .validate()
                    .map_err(|problem| invalid(&alias, problem))?;
            }
            entries.push(CatalogEntry {
                display_name: model.name.unwrap_or_else(|| model.model_id.clone()),
                alias,
                provider: model.provider,
                model_id: model.model_id,
                params: model.params.into(),
                context_tokens: model.context_tokens,
                price_per_1k_input: model.price_per_1k_input,
                price_per_1k_output: model.price_per_1k_output,
                batch_price,
                tier_prices,
                sagemaker_format: model.sagemaker,
            });
        }
        Ok((
            file.defaults.map(|defaults| defaults.params.into()),
            entries,
        ))
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The entries as a Markdown table (the model list in `docs/models.md` is generated from it).
    pub fn markdown_table(&self) -> String {
        let mut table = String::from(
            "| alias | provider | model id | name | context | $ / 1k input | $ / 1k output | batch $ / 1k in / out |\n\
             |---|---|---|---|---:|---:|---:|---:|\n",
        );
        let or_dash = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
        for entry in &self.entries {
            table.push_str(&format!(
                "| `{}` | {} | `{}` | {} | {} | {} | {} | {} |\n",
                entry.alias,
                entry.provider,
                entry.model_id,
                entry.display_name,
                or_dash(entry.context_tokens.map(|tokens| tokens.to_string())),
                or_dash(entry.price_per_1k_input.map(|price| price.to_string())),
                or_dash(entry.price_per_1k_output.map(|price| price.to_string())),
                or_dash(
                    entry
                        .batch_price
                        .map(|price| format!("{} / {}", price.per_1k_input, price.per_1k_output))
                ),
            ));
        }
        table
    }

    /// The default inference parameters.
    pub fn defaults(&self) -> &InferenceParams {
        &self.defaults
    }

    /// Resolves an alias or `provider:model-id` (split on the first `:` only); after the
    /// provider, an alias of that provider also works (`bedrock:nova-lite`).
    pub fn resolve(&self, spec: &str) -> Result<ModelSpec, CatalogError> {
        let trimmed = spec.trim();
        if let Some(entry) = self.entries.iter().find(|entry| entry.alias == trimmed) {
            return Ok(self.spec_from_entry(spec, entry));
        }
        let Some((provider_name, model_id)) = trimmed.split_once(':') else {
            return Err(CatalogError::UnknownModel {
                spec: spec.to_owned(),
                close_aliases: self.close_aliases(trimmed),
            });
        };
        let provider: ProviderKind =
            provider_name
                .parse()
                .map_err(|()| CatalogError::UnknownProvider {
                    spec: spec.to_owned(),
                    provider: provider_name.to_owned(),
                })?;
        let model_id = model_id.trim();
        if model_id.is_empty() {
            return Err(CatalogError::EmptyModelId {
                spec: spec.to_owned(),
                provider,
            });
        }
        // The catalogued model id, else an alias of the same provider (`bedrock:nova-lite`).
        let catalogued = self
            .entries
            .iter()
            .find(|entry| entry.provider == provider && entry.model_id == model_id)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|entry| entry.provider == provider && entry.alias == model_id)
            });
        if let Some(entry) = catalogued {
            return Ok(self.spec_from_entry(spec, entry));
        }
        Ok(ModelSpec {
            spec: spec.to_owned(),
            provider,
            model_id: model_id.to_owned(),
            display_name: model_id.to_owned(),
            params: for_provider(self.defaults.clone(), provider),
            context_tokens: None,
            price_per_1k_input: None,
            price_per_1k_output: None,
            batch_price: None,
            tier_prices: TierPrices::default(),
            sagemaker_format: None,
        })
    }

    fn spec_from_entry(&self, spec: &str, entry: &CatalogEntry) -> ModelSpec {
        ModelSpec {
            spec: spec.to_owned(),
            provider: entry.provider,
            model_id: entry.model_id.clone(),
            display_name: entry.display_name.clone(),
            params: for_provider(merge_params(&self.defaults, &entry.params), entry.provider),
            context_tokens: entry.context_tokens,
            price_per_1k_input: entry.price_per_1k_input,
            price_per_1k_output: entry.price_per_1k_output,
            batch_price: entry.batch_price,
            tier_prices: entry.tier_prices,
            sagemaker_format: entry.sagemaker_format.clone(),
        }
    }

    /// Up to three aliases sharing the longest prefix (at least four characters) with the spec.
    fn close_aliases(&self, spec: &str) -> Vec<String> {
        let wanted = spec.to_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .entries
            .iter()
            .map(|entry| {
                let common = entry
                    .alias
                    .chars()
                    .zip(wanted.chars())
                    .take_while(|(left, right)| left == right)
                    .count();
                (common, entry.alias.as_str())
            })
            .filter(|(common, _)| *common >= 4)
            .collect();
        // Stable: equally close aliases keep their catalog order.
        scored.sort_by_key(|(common, _)| std::cmp::Reverse(*common));
        scored
            .into_iter()
            .take(3)
            .map(|(_, alias)| alias.to_owned())
            .collect()
    }
}

/// `params` without the Bedrock-only options (service tier, latency) unless `provider` is
/// Bedrock: the catalog's defaults apply them to its Bedrock models only.
fn for_provider(mut params: InferenceParams, provider: ProviderKind) -> InferenceParams {
    if provider != ProviderKind::Bedrock {
        params.service_tier = None;
        params.latency = None;
    }
    params
}

/// The entry's parameters over the defaults, field by field.
fn merge_params(defaults: &InferenceParams, entry: &InferenceParams) -> InferenceParams {
    InferenceParams {
        temperature: entry.temperature.or(defaults.temperature),
        max_tokens: entry.max_tokens.or(defaults.max_tokens),
        top_p: entry.top_p.or(defaults.top_p),
        stop_sequences: if entry.stop_sequences.is_empty() {
            defaults.stop_sequences.clone()
        } else {
            entry.stop_sequences.clone()
        },
        service_tier: entry.service_tier.or(defaults.service_tier),
        latency: entry.latency.or(defaults.latency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spec: &str, expected: Result<(ProviderKind, &str, Option<f64>), &str>) {
        let got = Catalog::embedded().resolve(spec);
        match expected {
            Ok((provider, model_id, price_in)) => {
                let got = got.expect("resolves");
                assert_eq!(
                    (got.provider, got.model_id.as_str(), got.price_per_1k_input),
                    (provider, model_id, price_in),
                    "{spec}"
                );
                assert_eq!(got.spec, spec);
            }
            Err(message) => {
                assert_eq!(got.expect_err("fails").to_string(), message, "{spec}");
            }
        }
    }

    #[test]
    fn embedded_catalog_parses() {
        let catalog = Catalog::embedded();
        assert!(catalog.entries().len() >= 30);
        for entry in catalog.entries() {
            assert!(
                entry.price_per_1k_input.is_some() && entry.price_per_1k_output.is_some(),
                "{}",
                entry.alias
            );
        }
    }

    #[test]
    fn resolution() {
        use ProviderKind::*;
        let haiku = "anthropic.claude-3-haiku-20240307-v1:0";
        check("claude-3-haiku", Ok((Bedrock, haiku, Some(0.00025))));
        check(
            "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
            Ok((Bedrock, haiku, Some(0.00025))),
        );
        check(
            "openai:gpt-4o-mini",
            Ok((OpenAi, "gpt-4o-mini", Some(0.00015))),
        );
        check("gpt-4o-mini", Ok((OpenAi, "gpt-4o-mini", Some(0.00015))));
        check(
            "sagemaker:my-endpoint",
            Ok((SageMaker, "my-endpoint", None)),
        );
        check("openai:llama3.2:3b", Ok((OpenAi, "llama3.2:3b", None)));
        check(
            "bedrock:us.amazon.nova-premier-v1:0",
            Ok((Bedrock, "us.amazon.nova-premier-v1:0", None)),
        );
        check(
            "vertex:gemini",
            Err(
                "unknown provider `vertex` in `vertex:gemini` (providers: bedrock, sagemaker, openai)",
            ),
        );
        check("openai:", Err("`openai:` has no model id after `openai:`"));
        check(
            "claude-3-haik",
            Err(
                "`claude-3-haik` is neither `provider:model-id` (providers: bedrock, sagemaker, openai) nor a catalog alias (did you mean claude-3-haiku, claude-3-sonnet, claude-3-5-sonnet?)",
            ),
        );
        check(
            "zzz",
            Err(
                "`zzz` is neither `provider:model-id` (providers: bedrock, sagemaker, openai) nor a catalog alias",
            ),
        );
    }

    #[test]
    fn defaults_merge_and_cost() {
        let spec = Catalog::embedded()
            .resolve("gpt-4o-mini")
            .expect("resolves");
        assert_eq!(spec.params.temperature, Some(0.0));
        assert_eq!(spec.params.max_tokens, Some(512));
        let generation = Generation {
            text: String::new(),
            input_tokens: Some(2000),
            output_tokens: Some(1000),
        };
        let cost = spec.cost(&generation).expect("priced");
        assert!((cost - (2.0 * 0.00015 + 0.0006)).abs() < 1e-15, "{cost}");
        let unpriced = Catalog::embedded()
            .resolve("openai:my-local-model")
            .expect("resolves");
        assert_eq!(unpriced.cost(&generation), None);
        let no_tokens = Generation {
            input_tokens: None,
            ..generation
        };
        assert_eq!(spec.cost(&no_tokens), None);
    }

    fn check_invalid(source: &str, expected: &str) {
        let err = Catalog::parse(source, Path::new("user.toml")).expect_err("invalid");
        let mut message = err.to_string();
        if let Some(source) = std::error::Error::source(&err) {
            message.push_str(": ");
            message.push_str(&source.to_string());
        }
        assert!(message.contains(expected), "{message}");
    }

    #[test]
    fn invalid_catalogs() {
        let entry = "[[model]]\nalias = \"a\"\nprovider = \"openai\"\nmodel_id = \"m\"\n";
        check_invalid(
            &format!("{entry}{entry}"),
            "user.toml: model `a`: the alias appears twice",
        );
        check_invalid(
            "[[model]]\nalias = \"a:b\"\nprovider = \"openai\"\nmodel_id = \"m\"\n",
            "without `:`",
        );
        check_invalid(
            "[[model]]\nalias = \"a\"\nprovider = \"azure\"\nmodel_id = \"m\"\n",
            "invalid catalog user.toml",
        );
        check_invalid(
            &format!("{entry}price_per_1k_input = -1.0\n"),
            "`price_per_1k_input` must be a finite number ≥ 0",
        );
        check_invalid(
            &format!("{entry}colour = \"red\"\n"),
            "unknown field `colour`",
        );
        check_invalid(
            &format!("{entry}[model.sagemaker]\nformat = \"messages\"\n"),
            "provider is not sagemaker",
        );
        check_invalid(
            "[[model]]\nalias = \"e\"\nprovider = \"sagemaker\"\nmodel_id = \"ep\"\n[model.sagemaker]\nformat = \"custom\"\nrequest_template = \"{nope\"\nresponse_path = \"0\"\n",
            "request template is not valid JSON",
        );
    }

    #[test]
    fn user_file_overrides_and_extends() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("models.toml");
        std::fs::write(
            &path,
            "\u{feff}[defaults.params]\nmax_tokens = 64\n\n\
             [[model]]\nalias = \"gpt-4o-mini\"\nprovider = \"openai\"\nmodel_id = \"gpt-4o-mini\"\nprice_per_1k_input = 1.0\n\n\
             [[model]]\nalias = \"my-llama\"\nprovider = \"sagemaker\"\nmodel_id = \"llama-endpoint\"\nname = \"My Llama\"\n\
             [model.params]\ntemperature = 0.7\n[model.sagemaker]\nformat = \"messages\"\n",
        )
        .expect("write");
        let catalog = Catalog::load(&path).expect("loads");
        let mini = catalog.resolve("gpt-4o-mini").expect("resolves");
        assert_eq!(mini.price_per_1k_input, Some(1.0));
        assert_eq!(mini.params.max_tokens, Some(64));
        assert_eq!(
            mini.params.temperature, None,
            "user defaults replace built-in ones"
        );
        let llama = catalog.resolve("my-llama").expect("resolves");
        assert_eq!(
            (
                llama.provider,
                llama.display_name.as_str(),
                llama.params.temperature
            ),
            (ProviderKind::SageMaker, "My Llama", Some(0.7))
        );
        assert_eq!(llama.sagemaker_format, Some(SageMakerFormat::Messages));
        assert!(catalog.resolve("claude-3-haiku").is_ok(), "built-ins kept");
        let missing = Catalog::load(&dir.path().join("nope.toml")).expect_err("missing");
        assert!(
            missing.to_string().starts_with("cannot read catalog "),
            "{missing}"
        );
    }

    #[test]
    fn service_tiers_are_bedrocks_and_priced_per_tier() {
        let catalog = Catalog::parse(
            "[defaults.params]\nservice_tier = \"flex\"\nlatency = \"optimized\"\n\n\
             [[model]]\nalias = \"pro\"\nprovider = \"bedrock\"\nmodel_id = \"amazon.nova-pro-v1:0\"\n\
             price_per_1k_input = 0.8\nprice_per_1k_output = 3.2\n\
             flex_price_per_1k_input = 0.4\nflex_price_per_1k_output = 1.6\n",
            Path::new("tiers.toml"),
        )
        .expect("parses");
        let pro = catalog.resolve("pro").expect("resolves");
        assert_eq!(pro.params.service_tier, Some(ServiceTier::Flex));
        assert_eq!(pro.params.latency, Some(Latency::Optimized));
        assert_eq!(pro.prices(None), (Some(0.8), Some(3.2)));
        assert_eq!(
            pro.prices(Some(ServiceTier::Default)),
            (Some(0.8), Some(3.2))
        );
        assert_eq!(pro.prices(Some(ServiceTier::Flex)), (Some(0.4), Some(1.6)));
        assert_eq!(pro.prices(Some(ServiceTier::Priority)), (None, None));
        // The defaults' Bedrock options stay off the other providers' models.
        let openai = catalog.resolve("openai:gpt-4o-mini").expect("resolves");
        assert_eq!(
            (openai.params.service_tier, openai.params.latency),
            (None, None)
        );
        for (entry, problem) in [
            (
                "provider = \"openai\"\nmodel_id = \"m\"\nflex_price_per_1k_input = 1.0\nflex_price_per_1k_output = 1.0\n",
                "flex tier prices on a model whose provider is not bedrock",
            ),
            (
                "provider = \"bedrock\"\nmodel_id = \"m\"\npriority_price_per_1k_input = 1.0\n",
                "`priority_price_per_1k_input` and `priority_price_per_1k_output` go together",
            ),
            (
                "provider = \"bedrock\"\nmodel_id = \"m\"\nflex_price_per_1k_input = -1.0\nflex_price_per_1k_output = 1.0\n",
                "`flex_price_per_1k_input` must be a finite number ≥ 0",
            ),
            (
                "provider = \"openai\"\nmodel_id = \"m\"\n[model.params]\nservice_tier = \"flex\"\n",
                "`service_tier` and `latency` are Amazon Bedrock options",
            ),
            (
                "provider = \"bedrock\"\nmodel_id = \"m\"\n[model.params]\nservice_tier = \"reserved\"\n",
                "unknown variant `reserved`",
            ),
        ] {
            let source = format!("[[model]]\nalias = \"x\"\n{entry}");
            let error = store::error_chain(
                &Catalog::parse(&source, Path::new("bad.toml")).expect_err(problem),
            );
            assert!(error.contains(problem), "{problem}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn resolve_never_panics(spec in ".{0,60}") {
            let _ = Catalog::embedded().resolve(&spec);
        }

        #[test]
        fn parse_never_panics(source in ".{0,200}") {
            let _ = Catalog::parse(&source, Path::new("fuzz.toml"));
        }
    }
}
