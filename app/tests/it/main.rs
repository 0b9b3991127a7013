//! The app's one integration test binary: each file is a module.

mod helpers;
mod providers;
