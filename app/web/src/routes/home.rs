//! The start page: the user's datasets and latest runs, and the way to a new evaluation.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::error::AppError;
use crate::page::{Html, Layout};
use crate::session::CurrentUser;
use crate::state::AppState;
use store::{DatasetRow, RunRow};

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(home_show))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    datasets: Vec<DatasetRow>,
    runs: Vec<RunRow>,
}

async fn home_show(
    State(state): State<AppState>,
    user: CurrentUser,
    layout: Layout,
) -> Result<Html<HomePage>, AppError> {
    let datasets = state.store.datasets(&user.id).await?;
    let runs = state.store.runs(&user.id, 5).await?;
    Ok(Html(HomePage {
        layout,
        datasets,
        runs,
    }))
}
