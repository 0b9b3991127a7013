//! `deployer fleet`: the same lifecycle in many accounts, for workshop facilitators.
//!
//! [`targets`] reads the targets file (account, region, role), [`state`] remembers how each
//! target's last run of each command ended (so a re-run retries only the failed ones), and
//! [`runner`] runs one target: STS `AssumeRole` into its account, then this same binary as a
//! child process (`deployer up`, `down`, `status`, `users add`, or their `bootstrap` forms) with
//! the role's temporary credentials and the target's region, its output in a log file of its
//! own. `commands::fleet` runs the targets with bounded parallelism and prints the table.

pub mod runner;
pub mod state;
pub mod targets;
