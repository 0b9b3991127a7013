//! Server-rendered SVG charts of a run: the score distribution of each score (ten bins over
//! 0..1, one series per model), the model comparison (mean per score, one bar per model) and,
//! when the run groups its records by a category, each score's mean per category (one bar per
//! model, at most [`MAX_CATEGORY_BARS`] categories; the tables and exports have them all).
//!
//! Invariants: charts are plain SVG markup built here (no script, no inline style: the CSP
//! forbids both), every text in them is escaped, each has a `<title>` and a text alternative
//! (`Chart::summary`) for screen readers; drawing the distribution reads the run's score index
//! (`Store::score_matrix` of each score, kept in memory for a run that no longer runs), never
//! a record body, and is skipped for runs over [`MAX_DISTRIBUTION_ROWS`] rows.

use std::fmt::Write;

use engine::output::Summary;
use store::{Store, StoreError, UserId};

/// Runs with more rows than this get no distribution chart (each view bins every cell of each
/// score's matrix).
pub const MAX_DISTRIBUTION_ROWS: usize = 20_000;

/// The most categories a per-category chart shows (in first-seen order); the others are named
/// in its text alternative and are in the tables and exports.
pub const MAX_CATEGORY_BARS: usize = 12;

const WIDTH: f64 = 460.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 30.0;
const TOP: f64 = 12.0;
/// Series colours (colour-blind safe, Okabe-Ito).
const COLOURS: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
];

/// One chart: its title, the SVG markup and a text alternative.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The caption.
    pub title: String,
    /// The SVG element (our markup; every text in it is escaped).
    pub svg: String,
    /// What the chart shows, in words.
    pub summary: String,
}

/// Escapes text for SVG/HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Each score's mean per category, one series per column (`models`), when the summary has
/// categories: the categories in first-seen order over the columns, at most
/// [`MAX_CATEGORY_BARS`] drawn.
fn category_charts(
    summary: &Summary,
    score_names: &[&'static str],
    models: &[String],
) -> Vec<Chart> {
    let mut categories: Vec<&str> = Vec::new();
    for line in &summary.models {
        for category in &line.categories {
            if !categories.contains(&category.category.as_str()) {
                categories.push(&category.category);
            }
        }
    }
    if categories.is_empty() {
        return Vec::new();
    }
    let drawn = &categories[..categories.len().min(MAX_CATEGORY_BARS)];
    let mut charts = Vec::new();
    for name in score_names {
        // mean[category][column]; `None` where a column has no score of that category.
        let means: Vec<Vec<Option<f64>>> = categories
            .iter()
            .map(|category| {
                summary
                    .models
                    .iter()
                    .map(|line| {
                        line.categories
                            .iter()
                            .find(|means| means.category == *category)
                            .and_then(|means| means.scores.iter().find(|score| score.name == *name))
                            .map(|score| score.value)
                    })
                    .collect()
            })
            .collect();
        if means.iter().flatten().all(Option::is_none) {
            continue;
        }
        let title = format!("Mean {name} per category");
        let groups: Vec<String> = drawn
            .iter()
            .map(|category| (*category).to_owned())
            .collect();
        let values: Vec<Vec<f64>> = means[..drawn.len()]
            .iter()
            .map(|row| row.iter().map(|mean| mean.unwrap_or(0.0)).collect())
            .collect();
        let mut text = categories
            .iter()
            .zip(&means)
            .take(MAX_CATEGORY_BARS)
            .map(|(category, row)| {
                let parts: Vec<String> = models
                    .iter()
                    .zip(row)
                    .map(|(model, mean)| match mean {
                        Some(mean) => format!("{model} {mean:.3}"),
                        None => format!("{model} none"),
                    })
                    .collect();
                format!("{category}: {}", parts.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        if categories.len() > MAX_CATEGORY_BARS {
            let _ = write!(
                text,
                "; {} more categories in the table",
                categories.len() - MAX_CATEGORY_BARS
            );
        }
        charts.push(Chart {
            svg: bar_chart(&title, 1.0, &groups, models, &values, "mean"),
            title,
            summary: text,
        });
    }
    charts
}

/// A bar chart of `groups` (x labels) × `series` (legend), values in `values[group][series]`.
fn bar_chart(
    title: &str,
    y_max: f64,
    groups: &[String],
    series: &[String],
    values: &[Vec<f64>],
    y_label: &str,
) -> String {
    let plot_width = WIDTH - LEFT - 10.0;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let y_max = if y_max > 0.0 { y_max } else { 1.0 };
    let group_width = plot_width / groups.len().max(1) as f64;
    // Labels wider than their group would overlap their neighbours: they are turned by
    // LABEL_ANGLE degrees (end-anchored under their group), and the chart grows to hold them.
    let labels: Vec<String> = groups
        .iter()
        .map(|group| shorten(group, MAX_LABEL_CHARS))
        .collect();
    let widest = labels
        .iter()
        .map(|label| label_width(label))
        .fold(0.0, f64::max);
    let rotate = widest > group_width * 0.9;
    let label_space = if rotate {
        widest * LABEL_ANGLE.to_radians().sin() + 6.0
    } else {
        0.0
    };
    let legend_top = HEIGHT + label_space;
    let total_height = legend_top + 18.0 * series.len().div_ceil(3) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {total_height:.1}" width="{WIDTH}" height="{total_height:.1}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    // Axes and grid at 0, 50 and 100 % of the range.
    for fraction in [0.0, 0.5, 1.0] {
        let y = TOP + plot_height * (1.0 - fraction);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d0d7de"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#59636e">{}</text>"##,
            LEFT + plot_width,
            LEFT - 4.0,
            y + 3.0,
            escape(&format_tick(y_max * fraction))
        );
    }
    let _ = write!(
        svg,
        r##"<text x="10" y="{:.1}" font-size="10" fill="#59636e" transform="rotate(-90 10 {:.1})" text-anchor="middle">{}</text>"##,
        TOP + plot_height / 2.0,
        TOP + plot_height / 2.0,
        escape(y_label)
    );
    let bar_width = (group_width * 0.8 / series.len().max(1) as f64).max(1.0);
    for (group_idx, group) in groups.iter().enumerate() {
        let x0 = LEFT + group_width * group_idx as f64 + group_width * 0.1;
        for (series_idx, series_name) in series.iter().enumerate() {
            let value = values
                .get(group_idx)
                .and_then(|row| row.get(series_idx))
                .copied()
                .unwrap_or(0.0);
            let height = (value / y_max).clamp(0.0, 1.0) * plot_height;
            let x = x0 + bar_width * series_idx as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="{}"><title>{}: {}: {}</title></rect>"#,
                TOP + plot_height - height,
                (bar_width - 1.0).max(1.0),
                COLOURS[series_idx % COLOURS.len()],
                escape(series_name),
                escape(group),
                escape(&format_tick(value))
            );
        }
        let (x, y) = (x0 + group_width * 0.4, HEIGHT - BOTTOM + 14.0);
        if rotate {
            let _ = write!(
                svg,
                r##"<text class="x-label" x="{x:.1}" y="{y:.1}" font-size="10" text-anchor="end" fill="#1b1f24" transform="rotate(-{LABEL_ANGLE} {x:.1} {:.1})">{}</text>"##,
                y - 8.0,
                escape(&labels[group_idx])
            );
        } else {
            let _ = write!(
                svg,
                r##"<text class="x-label" x="{x:.1}" y="{y:.1}" font-size="10" text-anchor="middle" fill="#1b1f24">{}</text>"##,
                escape(&labels[group_idx])
            );
        }
    }
    // Legend under the plot, three entries a row.
    for (series_idx, series_name) in series.iter().enumerate() {
        let x = LEFT + (series_idx % 3) as f64 * 140.0;
        let y = legend_top + 4.0 + (series_idx / 3) as f64 * 18.0;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#1b1f24">{}</text>"##,
            y - 9.0,
            COLOURS[series_idx % COLOURS.len()],
            x + 14.0,
            y,
            escape(&shorten(series_name, 20))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The longest x label, in characters (longer ones are shortened with an ellipsis).
const MAX_LABEL_CHARS: usize = 24;
/// How far turned labels are turned, in degrees.
const LABEL_ANGLE: f64 = 40.0;

/// A generous estimate of a label's width at font size 10 in a sans-serif face (no glyph
/// metrics here: wider than any common face, so labels judged to fit do fit).
fn label_width(label: &str) -> f64 {
    label.chars().count() as f64 * 6.2
}

fn format_tick(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// `text` cut to at most `n_chars` characters, the last one an ellipsis when it was cut (the
/// pages shorten long labels and prompts with it too).
pub(crate) fn shorten(text: &str, n_chars: usize) -> String {
    if text.chars().count() <= n_chars {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(n_chars - 1).collect();
        short.push('…');
        short
    }
}

/// The bin (0..10) of a score in 0..1; 1.0 falls in the last bin.
fn bin(value: f64) -> usize {
    ((value.clamp(0.0, 1.0) * 10.0).floor() as usize).min(9)
}

/// The charts of a finished run.
pub async fn run_charts(
    store: &dyn Store,
    owner: &UserId,
    run_id: &str,
    summary: &Summary,
    score_names: &[&'static str],
) -> Result<Vec<Chart>, StoreError> {
    // One series per column: a model, or a (variant, model) pair when the run has variants.
    let several_variants = summary.variants().len() > 1;
    let models: Vec<String> = summary
        .models
        .iter()
        .map(|line| engine::output::column_title(&line.variant, &line.model, several_variants))
        .collect();
    let mut charts = Vec::new();
    if models.is_empty() || score_names.is_empty() {
        return Ok(charts);
    }
    // Model comparison: mean per score, one bar per model.
    let groups: Vec<String> = score_names.iter().map(|name| name.to_string()).collect();
    let values: Vec<Vec<f64>> = score_names
        .iter()
        .map(|name| {
            summary
                .models
                .iter()
                .map(|line| line.mean(name).unwrap_or(0.0))
                .collect()
        })
        .collect();
    let summary_text = score_names
        .iter()
        .zip(&values)
        .map(|(name, means)| {
            let parts: Vec<String> = models
                .iter()
                .zip(means)
                .map(|(model, mean)| format!("{model} {mean:.3}"))
                .collect();
            format!("{name}: {}", parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let title = if several_variants {
        "Mean score per variant and model"
    } else {
        "Mean score per model"
    };
    charts.push(Chart {
        title: title.to_string(),
        svg: bar_chart(title, 1.0, &groups, &models, &values, "mean"),
        summary: summary_text,
    });

    charts.extend(category_charts(summary, score_names, &models));

    let n_rows: usize = summary.models.iter().map(|model| model.n_records).sum();
    if n_rows > MAX_DISTRIBUTION_ROWS {
        return Ok(charts);
    }
    // Score distributions: counts per bin, per score and column, from the run's score index
    // (one cell per record and column, kept for a finished run), never a record body.
    let mut counts = vec![vec![vec![0usize; models.len()]; 10]; score_names.len()];
    for (score_idx, name) in score_names.iter().enumerate() {
        let matrix = store.score_matrix(owner, run_id, name).await?;
        if matrix.n_columns == 0 {
            continue;
        }
        for line in matrix.cells.chunks(matrix.n_columns) {
            for (column, cell) in line.iter().enumerate().take(models.len()) {
                if let store::Cell::Value(value) = cell {
                    counts[score_idx][bin(*value)][column] += 1;
                }
            }
        }
    }
    let bins: Vec<String> = (0..10)
        .map(|bin_idx| format!("{:.1}", bin_idx as f64 / 10.0))
        .collect();
    for (score_idx, name) in score_names.iter().enumerate() {
        let values: Vec<Vec<f64>> = counts[score_idx]
            .iter()
            .map(|per_model| per_model.iter().map(|n| *n as f64).collect())
            .collect();
        let y_max = values.iter().flatten().copied().fold(0.0, f64::max);
        let title = format!("Distribution of {name}");
        let text = models
            .iter()
            .enumerate()
            .map(|(model_idx, model)| {
                let per_bin: Vec<String> = counts[score_idx]
                    .iter()
                    .enumerate()
                    .filter(|(_, per_model)| per_model[model_idx] > 0)
                    .map(|(bin_idx, per_model)| {
                        format!(
                            "{} in [{:.1}, {:.1}{}",
                            per_model[model_idx],
                            bin_idx as f64 / 10.0,
                            (bin_idx + 1) as f64 / 10.0,
                            if bin_idx == 9 { "]" } else { ")" }
                        )
                    })
                    .collect();
                format!("{model}: {}", per_bin.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        charts.push(Chart {
            svg: bar_chart(&title, y_max, &bins, &models, &values, "records"),
            title,
            summary: text,
        });
    }
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fmeval_scoring::metrics::{Score, ScoreValue};
    use store::RecordRow;

    fn row(model_order: usize, position: usize, f1: Option<f64>) -> RecordRow {
        RecordRow {
            model: format!("m{}", model_order + 1),
            variant: "A".to_string(),
            model_order,
            position,
            index: position,
            model_input: "q".to_string(),
            prompt: "q".to_string(),
            model_output: f1.map(|_| "a".to_string()),
            target_output: Some("a".to_string()),
            category: None,
            scores: f1
                .map(|value| Score {
                    name: "f1_score".to_string(),
                    value: ScoreValue::Float(value),
                })
                .into_iter()
                .collect(),
            latency_ms: Some(1.0),
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            error: f1.is_none().then(|| "HTTP 500".to_string()),
            judge_replies: Vec::new(),
            perturbations: Vec::new(),
            cached: false,
        }
    }

    #[tokio::test]
    async fn the_distribution_counts_each_columns_scores_from_the_score_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store::SqliteStore::open(&dir.path().join("store.sqlite")).expect("store");
        let owner = UserId::local();
        store
            .create_run(&owner, "r", &serde_json::json!({}), 6)
            .await
            .expect("run created");
        let rows = vec![
            row(0, 0, Some(0.05)),
            row(1, 0, Some(0.5)),
            row(0, 1, Some(0.95)),
            row(1, 1, None),
            row(0, 2, Some(1.0)),
            row(1, 2, Some(0.55)),
        ];
        let columns: Vec<engine::output::Column> = ["m1", "m2"]
            .iter()
            .map(|model| engine::output::Column {
                variant: "A".to_string(),
                model: model.to_string(),
            })
            .collect();
        let mut builder = engine::output::SummaryBuilder::new(&columns);
        for row in &rows {
            builder.add(row);
        }
        store
            .insert_records(&owner, "r", rows)
            .await
            .expect("rows stored");
        let summary = Summary {
            run_id: "r".to_string(),
            status: store::RunStatus::Finished,
            total: 6,
            done: 5,
            failed: 1,
            elapsed_secs: 1.0,
            config: serde_json::json!({}),
            models: builder.finish(),
        };
        let charts = run_charts(&store, &owner, "r", &summary, &["f1_score"])
            .await
            .expect("charts");
        let distribution = charts
            .iter()
            .find(|chart| chart.title == "Distribution of f1_score")
            .expect("a distribution chart");
        assert_eq!(
            distribution.summary,
            "m1: 1 in [0.0, 0.1), 2 in [0.9, 1.0]; m2: 2 in [0.5, 0.6)"
        );
    }

    #[test]
    fn bins_cover_zero_to_one_inclusive() {
        assert_eq!(
            [
                bin(0.0),
                bin(0.05),
                bin(0.1),
                bin(0.99),
                bin(1.0),
                bin(1.5),
                bin(-1.0)
            ],
            [0, 0, 1, 9, 9, 9, 0]
        );
    }

    #[test]
    fn labels_wider_than_their_group_are_turned_and_the_chart_grows() {
        let scores: Vec<String> = [
            "exact_match_score",
            "quasi_exact_match_score",
            "f1_score",
            "precision_over_words",
            "recall_over_words",
        ]
        .map(String::from)
        .to_vec();
        let series = vec!["openai:m".to_string()];
        let values = vec![vec![0.5]; scores.len()];
        let crowded = bar_chart("t", 1.0, &scores, &series, &values, "mean");
        assert_eq!(
            crowded.matches("rotate(-40").count(),
            scores.len(),
            "{crowded}"
        );
        let two = &scores[..2];
        let roomy = bar_chart("t", 1.0, two, &series, &values[..2], "mean");
        assert!(!roomy.contains("rotate(-40"), "{roomy}");
        let height = |svg: &str| -> f64 {
            let start = svg.find("height=\"").expect("the svg has a height") + 8;
            let value = svg[start..].split('"').next().expect("a quoted height");
            value.parse().expect("a number")
        };
        assert!(height(&crowded) > height(&roomy) + 50.0);
    }

    #[test]
    fn chart_text_is_escaped() {
        let svg = bar_chart(
            "<t>",
            1.0,
            &["a&b".into()],
            &["<script>".into()],
            &[vec![0.5]],
            "y",
        );
        assert!(
            !svg.contains("<script>") && svg.contains("&lt;script&gt;") && svg.contains("a&amp;b")
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
