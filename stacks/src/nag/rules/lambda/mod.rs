//! Lambda rules: latest runtime of the function's language family.

mod lambda_latest_version;

pub use lambda_latest_version::LAMBDA_LATEST_VERSION;
