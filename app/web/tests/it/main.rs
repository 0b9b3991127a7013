//! The web app's integration tests: pages over HTTP, the login pages, and journeys in a real
//! browser. One binary, one module per file.

mod browser;
mod helpers;
mod load;
mod login;
mod pages;
mod shared;
mod tasks;
