//! Datasets: upload (JSON Lines or CSV, size-limited, checked with the CLI's file:line
//! errors), the sample SQuAD dataset in one click, a 10-row preview with the field list, and
//! delete.
//!
//! Invariants: an upload is streamed to the store's upload area (never a temp directory, never
//! whole in memory) and counted as it arrives, so a body over the limit stops at the limit;
//! the stored file is named by a random id, so no uploaded name reaches a path; problems are
//! reported with the uploaded file's name, as the CLI would name the file; a staged upload is
//! removed on every path that does not keep it (refused, failed, or the request dropped when
//! the client went away or the timeout struck), through [`Staged`]'s `Drop`, and whatever a
//! killed process left is removed at start-up ([`clean_staging`]).

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::io::AsyncWriteExt;

use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::{AppState, WebConfig};
use engine::dataset::Dataset;
use fmeval_scoring::python::python_str;
use store::{DatasetRow, NewDataset};

/// Rows shown in a dataset's preview.
const PREVIEW_ROWS: usize = 10;
/// Characters of a value shown in the preview.
const PREVIEW_CHARS: usize = 300;
/// Problems listed on a dataset's page at most.
const MAX_PROBLEMS: usize = 20;

pub fn routes(config: &WebConfig) -> Router<AppState> {
    Router::new()
        .route(
            "/datasets",
            get(datasets_list).merge(
                post(datasets_create)
                    // The multipart framing and the token field come on top of the file itself.
                    .layer(DefaultBodyLimit::max(config.max_upload_bytes + 64 * 1024)),
            ),
        )
        .route("/datasets/sample", post(datasets_add_sample))
        .route("/datasets/{id}", get(datasets_show))
        .route("/datasets/{id}/delete", post(datasets_delete))
}

#[derive(Template)]
#[template(path = "datasets.html")]
struct DatasetsPage {
    layout: Layout,
    datasets: Vec<DatasetRow>,
    upload_error: Option<String>,
    max_upload_mib: usize,
    attribution: &'static str,
    samples: &'static [engine::sample_data::Sample],
}

async fn datasets_page(
    state: &AppState,
    user: &CurrentUser,
    layout: Layout,
    upload_error: Option<String>,
) -> Result<DatasetsPage, AppError> {
    Ok(DatasetsPage {
        layout,
        datasets: state.store.datasets(&user.id).await?,
        upload_error,
        max_upload_mib: state.config.max_upload_bytes.div_ceil(1024 * 1024),
        attribution: engine::sample_data::ATTRIBUTION,
        samples: &engine::sample_data::SAMPLES[1..],
    })
}

async fn datasets_list(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> Result<Html<DatasetsPage>, AppError> {
    Ok(Html(datasets_page(&state, &user, layout, None).await?))
}

/// An uploaded file's name as shown: its last path component, without control characters,
/// at most 200 characters.
fn display_name(file_name: &str) -> String {
    let last = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    let trimmed = last.trim().to_string();
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        "dataset".to_string()
    } else {
        trimmed
    }
}

/// The format of an upload, from its name.
fn upload_format(name: &str) -> Result<&'static str, String> {
    let extension = std::path::Path::new(name)
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl" | "json" | "ndjson") => Ok("jsonl"),
        Some("csv") => Ok("csv"),
        _ => Err(format!(
            "`{name}`: only JSON Lines (.jsonl) and CSV (.csv) files can be uploaded"
        )),
    }
}

/// An upload being received, and why it was refused if it was.
/// A staged upload's file, removed when this is dropped unless the store moved it in place
/// (then the removal finds nothing).
struct Staged(std::path::PathBuf);

impl Staged {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => tracing::debug!("removed a staged upload that was not kept"),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(error = %error, "removing a staged upload failed"),
        }
    }
}

/// Removes what uploads left in the staging directory `dir` (a process killed mid-upload);
/// called once at start-up, before any request. Returns how many files were removed.
pub fn clean_staging(dir: &std::path::Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

enum Received {
    File {
        name: String,
        format: &'static str,
        staged: Staged,
    },
    Refused(AppError),
}

async fn receive_upload(state: &AppState, multipart: &mut Multipart) -> Result<Received, AppError> {
    let limit = state.config.max_upload_bytes;
    let too_large = || {
        AppError::PayloadTooLarge(format!(
            "The file is larger than the upload limit of {} MiB.",
            limit.div_ceil(1024 * 1024)
        ))
    };
    let multipart_error = |error: axum::extract::multipart::MultipartError| {
        if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            AppError::BadRequest(format!(
                "The upload could not be read: {}",
                error.body_text()
            ))
        }
    };
    let mut received = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") || received.is_some() {
            // The token was checked by the CSRF guard; other fields are not ours. Read on.
            while field.chunk().await.map_err(multipart_error)?.is_some() {}
            continue;
        }
        let name = display_name(field.file_name().unwrap_or(""));
        if field.file_name().unwrap_or("").is_empty() {
            return Ok(Received::Refused(AppError::BadRequest(
                "Choose a file to upload.".to_string(),
            )));
        }
        let format = match upload_format(&name) {
            Ok(format) => format,
            Err(message) => return Ok(Received::Refused(AppError::BadRequest(message))),
        };
        let staged = Staged(state.store.staging_path().with_extension(format));
        let io_error = |error: std::io::Error| {
            AppError::Internal(anyhow::Error::new(error).context("writing the upload"))
        };
        // Private, like the store: a dataset holds the user's prompts and references.
        let mut file = store::private_fs::create_async(staged.path())
            .await
            .map_err(io_error)?;
        let mut size = 0usize;
        let outcome = loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    size += chunk.len();
                    if size > limit {
                        break Err(too_large());
                    }
                    if let Err(error) = file.write_all(&chunk).await {
                        break Err(io_error(error));
                    }
                }
                Ok(None) => break file.flush().await.map_err(io_error),
                Err(error) => break Err(multipart_error(error)),
            }
        };
        drop(file);
        if let Err(error) = outcome {
            drop(staged);
            return Ok(Received::Refused(error));
        }
        received = Some(Received::File {
            name,
            format,
            staged,
        });
    }
    Ok(received.unwrap_or_else(|| {
        Received::Refused(AppError::BadRequest("Choose a file to upload.".to_string()))
    }))
}

/// Checks a staged upload as a run would read it; the error names the uploaded file.
fn check_upload(staged: &std::path::Path, name: &str) -> Result<(usize, Vec<String>), String> {
    let rename = |message: String| message.replace(&staged.display().to_string(), name);
    let dataset = Dataset::open(staged).map_err(|error| rename(store::error_chain(&error)))?;
    let fields = engine::plan::usable_fields(&dataset).map_err(|error| rename(error.message))?;
    let n_records = dataset
        .count()
        .map_err(|error| rename(store::error_chain(&error)))?;
    Ok((n_records, fields))
}

async fn keep_upload(
    state: &AppState,
    user: &CurrentUser,
    name: String,
    format: &'static str,
    staged: &Staged,
) -> Result<Result<DatasetRow, String>, AppError> {
    let checked = {
        let (staged, name) = (staged.path().to_path_buf(), name.clone());
        tokio::task::spawn_blocking(move || check_upload(&staged, &name))
            .await
            .map_err(|error| AppError::Internal(anyhow::Error::new(error)))?
    };
    let (n_records, fields) = match checked {
        Ok(checked) => checked,
        Err(message) => return Ok(Err(message)),
    };
    let size = tokio::fs::metadata(staged.path())
        .await
        .map_err(|error| AppError::Internal(anyhow::Error::new(error)))?
        .len();
    if let Err(message) = crate::safety::check_dataset_quota(state, &user.id, size).await? {
        return Ok(Err(message));
    }
    let row = state
        .store
        .add_dataset(
            &user.id,
            NewDataset {
                name,
                format: format.to_string(),
                n_records,
                fields,
                staged: staged.path().to_path_buf(),
            },
        )
        .await?;
    Ok(Ok(row))
}

async fn datasets_create(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    mut multipart: Multipart,
) -> Result<Response, AppError> {
    let refused = |error: AppError, state: AppState, user: CurrentUser, layout: Layout| async move {
        let status = error.status();
        let page = datasets_page(&state, &user, layout, Some(error.public_message())).await?;
        Ok::<Response, AppError>((status, Html(page)).into_response())
    };
    let received = match receive_upload(&state, &mut multipart).await {
        Ok(received) => received,
        Err(error @ (AppError::BadRequest(_) | AppError::PayloadTooLarge(_))) => {
            return refused(error, state, user, layout).await;
        }
        Err(error) => return Err(error),
    };
    match received {
        Received::Refused(error) => refused(error, state, user, layout).await,
        Received::File {
            name,
            format,
            staged,
        } => match keep_upload(&state, &user, name, format, &staged).await? {
            Ok(row) => Ok(Redirect::to(&format!("/datasets/{}", row.id)).into_response()),
            Err(message) => refused(AppError::BadRequest(message), state, user, layout).await,
        },
    }
}

/// Which sample `/datasets/sample` adds (default: the SQuAD one).
#[derive(Debug, serde::Deserialize)]
struct SampleQuery {
    name: Option<String>,
}

async fn datasets_add_sample(
    State(state): State<AppState>,
    user: CurrentUser,
    axum::extract::Query(query): axum::extract::Query<SampleQuery>,
) -> Result<Response, AppError> {
    let sample = match query.name.as_deref() {
        None => &engine::sample_data::SAMPLES[0],
        Some(name) => engine::sample_data::sample(name)
            .ok_or_else(|| AppError::BadRequest(format!("there is no sample dataset `{name}`")))?,
    };
    let staged = Staged(state.store.staging_path().with_extension("jsonl"));
    let write_sample = async {
        let mut file = store::private_fs::create_async(staged.path()).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, sample.jsonl).await?;
        tokio::io::AsyncWriteExt::flush(&mut file).await
    };
    write_sample.await.map_err(|error| {
        AppError::Internal(anyhow::Error::new(error).context("writing the sample"))
    })?;
    match keep_upload(
        &state,
        &user,
        sample.file_name.to_string(),
        "jsonl",
        &staged,
    )
    .await?
    {
        Ok(row) => Ok(Redirect::to(&format!("/datasets/{}", row.id)).into_response()),
        // The sample always passes its checks: what is left is a quota the user can act on.
        Err(message) => Err(AppError::BadRequest(message)),
    }
}

#[derive(Template)]
#[template(path = "dataset.html")]
struct DatasetPage {
    layout: Layout,
    dataset: DatasetRow,
    rows: Vec<Vec<String>>,
    problems: Vec<String>,
    n_problems: usize,
    /// Who the dataset is shared with.
    grants: Vec<super::teams::GrantView>,
}

/// A dataset's first rows (one text per field), its first problems and how many it has.
struct Preview {
    rows: Vec<Vec<String>>,
    problems: Vec<String>,
    n_problems: usize,
}

/// The first rows (values as the template would print them, shortened) and the record
/// problems of a dataset, read in one pass.
fn preview(dataset: &DatasetRow) -> Result<Preview, String> {
    let rename =
        |message: String| message.replace(&dataset.path.display().to_string(), &dataset.name);
    let file = Dataset::open(&dataset.path).map_err(|error| rename(error.to_string()))?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut n_problems = 0;
    for item in file.records().map_err(|error| rename(error.to_string()))? {
        match item {
            Ok(record) => {
                if rows.len() < PREVIEW_ROWS {
                    rows.push(
                        dataset
                            .fields
                            .iter()
                            .map(|field| match record.fields.get(field) {
                                Some(value) => shorten(&python_str(value)),
                                None => String::new(),
                            })
                            .collect(),
                    );
                }
            }
            Err(error) => {
                n_problems += 1;
                if problems.len() < MAX_PROBLEMS {
                    problems.push(rename(store::error_chain(&error)));
                }
            }
        }
    }
    Ok(Preview {
        rows,
        problems,
        n_problems,
    })
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= PREVIEW_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(PREVIEW_CHARS).collect();
    short.push('…');
    short
}

async fn datasets_show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
    Path(id): Path<String>,
) -> Result<Html<DatasetPage>, AppError> {
    let dataset = state
        .store
        .dataset(&user.id, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("There is no dataset `{id}`.")))?;
    let Preview {
        rows,
        problems,
        n_problems,
    } = {
        let dataset = dataset.clone();
        tokio::task::spawn_blocking(move || preview(&dataset))
            .await
            .map_err(|error| AppError::Internal(anyhow::Error::new(error)))?
            .map_err(|message| AppError::Internal(anyhow::anyhow!(message)))?
    };
    let grants =
        super::teams::grant_views(&state, &user.id, store::ItemKind::Dataset, &dataset.id).await?;
    Ok(Html(DatasetPage {
        layout,
        grants,
        dataset,
        rows,
        problems,
        n_problems,
    }))
}

async fn datasets_delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Redirect, AppError> {
    if !state.store.delete_dataset(&user.id, &id).await? {
        return Err(AppError::NotFound(format!("There is no dataset `{id}`.")));
    }
    Ok(Redirect::to("/datasets"))
}

/// The format label of a dataset row.
pub fn format_label(format: &str) -> &'static str {
    if format == "csv" { "CSV" } else { "JSON Lines" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_names_never_become_paths() {
        assert_eq!(display_name("../../etc/passwd.jsonl"), "passwd.jsonl");
        assert_eq!(display_name("C:\\Users\\me\\qa.csv"), "qa.csv");
        assert_eq!(display_name(".."), "dataset");
        assert_eq!(display_name("a\u{0}b\n.jsonl"), "ab.jsonl");
        assert_eq!(upload_format("x.JSONL"), Ok("jsonl"));
        assert_eq!(upload_format("x.csv"), Ok("csv"));
        assert!(upload_format("x.exe").is_err());
    }
}
