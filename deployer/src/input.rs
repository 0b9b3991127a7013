//! Reading the files a user names (templates, config files) with a size cap: the `capped`
//! crate's, shared with `llm-eval`.
//!
//! `deployer nag --template /dev/zero` used to read until memory ran out; every read here stops
//! one byte past its limit and fails with the file, the limit and the flag that raises it.
//! Files are opened once and read to the end, so a FIFO or a process substitution
//! (`--template <(curl ...)`) works like a regular file.

pub use capped::{ByteSize, ReadError as InputError, parse_size, read_capped};

/// Default `--max-template-size`: eight times the 1 MB CloudFormation accepts from S3.
pub const DEFAULT_MAX_TEMPLATE_SIZE: ByteSize = ByteSize(8 << 20);
