//! `llm-eval`: the evaluation app's one binary.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080")
        .await
        .context("binding 127.0.0.1:8080")?;
    axum::serve(listener, app::web::router()).await?;
    Ok(())
}
