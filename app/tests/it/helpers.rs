//! Shared test helpers: paths to the sample dataset, temp dirs, running the binary.

#![allow(dead_code)]

use std::path::PathBuf;

/// The workspace root (parent of `app/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("app/ has a parent directory")
        .to_path_buf()
}

/// The shared sample dataset directory (`../shared/datasets/squad-qa` from the workspace root).
pub fn squad_dir() -> PathBuf {
    workspace_root().join("../shared/datasets/squad-qa")
}
