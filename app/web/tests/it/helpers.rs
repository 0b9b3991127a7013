//! The shared test helpers (`testkit`), under the name the test files use.

pub use testkit::*;
