//! The DynamoDB + S3 store of the deployed app: one on-demand table for runs, per-record results,
//! datasets' metadata, settings and sessions, and the data bucket for uploaded datasets and
//! records too large for one item. Several app tasks share it.
//!
//! Key design (`pk`, `sk`, both strings); a user's rows live under partitions that begin with
//! their id, so no query of one user can name another's rows:
//!
//! | item | `pk` | `sk` |
//! | --- | --- | --- |
//! | run | `U#<owner>` | `RUN#<run id>` |
//! | dataset | `U#<owner>` | `DS#<dataset id>` |
//! | settings | `U#<owner>` | `SETTINGS` |
//! | record | `U#<owner>#R#<run id>` | `<position, 10 digits>#<model order, 5 digits>` |
//! | score index chunk | `U#<owner>#X#<run id>` | `<write id>#<chunk>` |
//! | session | `SESSIONS#<first hex digit of the hash>` | SHA-256 of the session id |
//! | known user | `USERS` | `<user id>` |
//! | item shared with a user (pointer) | `SHARED#<grantee id, or *>` | `<run or dataset>#<item id>` |
//! | quota override | `U#<user>` | `QUOTAS` |
//! | audit entry | `U#<owner>#A#<run or dataset>#<item id>` | `<time>#<random>` |
//! | challenge | `CHALLENGES` | `C#<challenge id>` |
//! | submitted run | `CHALLENGE#<challenge id>` | `RUN#<run id>` |
//!
//! Grants live on the item they share (a string set `grants` of grantee ids, `*` for
//! everyone, at most [`crate::teams::MAX_GRANTS_PER_ITEM`], added and removed by conditional
//! updates keyed by the owner): reading another user's item checks that set, never the pointer.
//! The pointer items only list what is shared with someone; one whose item no longer grants it
//! is skipped. Challenges are listed newest first through `by_created` (`ckey` =
//! `CH#<created>#<id>`).
//!
//! Indexes: the local secondary index `by_created` (sort key `ckey` = `RUN#<created>#<id>` or
//! `DS#<created>#<id>`) lists a user's runs and datasets newest first; the sparse global
//! secondary index `running` (hash key `running`, set only while a run is running) finds
//! running runs of every owner at start-up.
//!
//! Invariants:
//! - A record is stored exactly once: each record item is written with a conditional put
//!   (`attribute_not_exists`), after a consistent read that the run (of that owner) exists; a
//!   put refused because the identical item is there is the SDK's retry of this very put, not a
//!   duplicate. The run's `n_ok`/`n_failed` counters (progress) are then added in one update;
//!   a process killed between the two leaves them short, and a resumed run recounts them from
//!   the stored rows. (Not transactions: they cost two write units per item, and moto copies
//!   the whole table for every item of one, which made the store the bottleneck.)
//! - Each `insert_records` call also writes the score index of the rows it stored (model,
//!   variant, failure, latency and scores of each, a few dozen bytes a row, packed into
//!   chunk items under the run's index partition) before it counts them, so a sorted page or
//!   the side-by-side view reads the run's index (a few items) instead of every record item,
//!   then fetches its own rows by key. A run whose index holds fewer rows than its counters
//!   (stored before the index existed, or a process killed between the two writes) is read
//!   from its record items instead. The index of a run that is not running is kept in memory
//!   (a few runs, keyed by its row count).
//! - A record whose item would pass [`SPILL_BYTES`] keeps its body in S3 under
//!   `records/<owner hash>/<run>/...` and the item points at it.
//! - Batch requests (deletes, reads) retry their unprocessed items with capped exponential
//!   backoff; throttled calls are retried by the SDK's standard retry mode (with backoff).
//! - Every call has a time limit (the SDK's attempt and operation timeouts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client as DynamoClient;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, LocalSecondaryIndex, Projection, ProjectionType,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_s3::Client as S3Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use sha2::Digest;

use super::scores::MatrixEntry;
use super::sqlite::random_hex;
use super::teams::{
    EVERYONE, MAX_AUDIT_SHOWN, MAX_CHALLENGES, MAX_GRANTS_PER_ITEM, MAX_OPEN_CHALLENGES,
    MAX_SHARED_LISTED, MAX_SUBMISSIONS, MAX_USERS_LISTED,
};
use super::{
    AuditEntry, ChallengeRow, ChallengeSpec, Grantee, ItemKind, KnownUser, Refusal, SharedItem,
    Submission,
};
use super::{
    Cell, DatasetRow, MAX_PAGE, NewDataset, PageStart, RecordCounts, RecordCursor, RecordFilter,
    RecordKey, RecordPage, RecordQuery, RecordRow, RecordSort, RunRow, RunStatus, ScoreMatrix,
    Session, SessionUser, Store, StoreError, StoreFuture, UserId,
};

/// Items larger than this (bytes of names and values) keep their body in S3: DynamoDB's item
/// limit is 400 KB, and the rest of the item needs some room.
pub const SPILL_BYTES: usize = 350 * 1024;

/// Conditional record puts in flight at once per `insert_records` call.
const PUTS_IN_FLIGHT: usize = 16;

/// Attempts of a batch request's unprocessed items before the call fails.
const MAX_ATTEMPTS: u32 = 8;

/// The first backoff of those retries; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Rows a filtered or sorted page may look through (their keys and sort values only).
const MAX_QUERY_ROWS: usize = 1_000_000;

/// Bytes of packed rows per score index chunk item (below the 400 KB item limit).
const INDEX_CHUNK_BYTES: usize = 300 * 1024;

/// Score indexes of runs that are not running kept in memory at most.
const CACHED_INDEXES: usize = 4;

/// One row in a score index chunk: position, column, dataset index, failed, latency, scores.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct PackedRow(
    usize,
    usize,
    usize,
    bool,
    Option<f64>,
    std::collections::BTreeMap<String, f64>,
);

/// A score index chunk: the columns' (model, variant) labels and the rows.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct PackedChunk {
    c: std::collections::BTreeMap<usize, (String, String)>,
    r: Vec<PackedRow>,
}

/// The partition of every session before they were spread (still purged, never written).
const SESSIONS_PK: &str = "SESSIONS";
/// Sessions are spread over this many partitions (`SESSIONS#0` .. `SESSIONS#f`), by the first
/// hex digit of their hash, so no single partition key takes every login's reads and writes.
const SESSION_SHARDS: u8 = 16;

/// The partition of the session whose key (hash) is `session_key`.
fn session_pk(session_key: &str) -> String {
    format!("{SESSIONS_PK}#{}", &session_key[..1])
}

/// The key item of session `session_id`.
fn session_item_key(session_id: &str) -> Item {
    let sk = session_key(session_id);
    key(session_pk(&sk), sk)
}

/// What the store needs to be opened.
#[derive(Debug, Clone)]
pub struct DynamoConfig {
    /// The table.
    pub table: String,
    /// The data bucket (datasets, spilled records).
    pub bucket: String,
    /// A local directory for uploads being checked and downloaded datasets.
    pub local_dir: PathBuf,
}

/// Counts the DynamoDB requests sent (every attempt), for the benchmark's requests per record.
#[derive(Debug, Default)]
struct CountRequests(Arc<AtomicU64>);

impl aws_sdk_dynamodb::config::Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// What the store's reads brought back since it was opened: items, their stored size (names
/// and values, as DynamoDB sizes items) and the strongly consistent read units they cost
/// (every read is strongly consistent: a `GetItem` or each item of a `BatchGetItem` is one unit
/// per 4 KB of the item, rounded up; a `Query` page one unit per 4 KB of all its items).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DynamoReads {
    /// Items read.
    pub items: u64,
    /// Their stored bytes.
    pub bytes: u64,
    /// Read capacity units.
    pub units: u64,
}

/// [`DynamoReads`] as the store counts them.
#[derive(Debug, Default)]
struct ReadCounters {
    items: AtomicU64,
    bytes: AtomicU64,
    units: AtomicU64,
}

/// Read units of `bytes` read at once, strongly consistent.
fn read_units(bytes: usize) -> u64 {
    bytes.div_ceil(4096).max(1) as u64
}

impl ReadCounters {
    /// Counts items read by key (`GetItem`, `BatchGetItem`): units per item.
    fn by_key(&self, items: &[Item]) {
        for item in items {
            let bytes = item_bytes(item);
            self.add(1, bytes, read_units(bytes));
        }
    }

    /// Counts one `Query` page: units for the page's bytes.
    fn query_page(&self, items: &[Item]) {
        let bytes: usize = items.iter().map(item_bytes).sum();
        self.add(items.len(), bytes, read_units(bytes));
    }

    fn add(&self, items: usize, bytes: usize, units: u64) {
        self.items.fetch_add(items as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.units.fetch_add(units, Ordering::Relaxed);
    }
}

/// The DynamoDB + S3 store (cheap to clone).
#[derive(Clone)]
pub struct DynamoStore {
    dynamo: DynamoClient,
    requests: Arc<AtomicU64>,
    reads: Arc<ReadCounters>,
    s3: S3Client,
    table: String,
    bucket: String,
    uploads_dir: PathBuf,
    datasets_dir: PathBuf,
    /// The bound on the dataset copies in `datasets_dir` (see [`crate::disk_cache`]).
    dataset_cache_bytes: u64,
    /// Score indexes of runs that are not running: (owner, run, row count, entries).
    indexes: Arc<std::sync::Mutex<std::collections::VecDeque<CachedIndex>>>,
    matrices: Arc<crate::scores::MatrixCache>,
}

type CachedIndex = (UserId, String, usize, Arc<Vec<IndexEntry>>);

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .field("bucket", &self.bucket)
            .finish()
    }
}

/// The SDK configuration of the store: the default chain (region, credentials,
/// `AWS_ENDPOINT_URL`), standard retries with backoff, bounded attempts.
pub async fn sdk_config() -> aws_config::SdkConfig {
    sdk_loader().load().await
}

/// [`sdk_config`]'s loader, for callers that set more (tests name their endpoint).
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(120))
                .build(),
        )
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

type Item = HashMap<String, AttributeValue>;

fn user_pk(owner: &UserId) -> String {
    format!("U#{}", owner.as_str())
}

/// The key of a run or dataset item.
fn item_key(owner: &UserId, kind: ItemKind, item_id: &str) -> Item {
    let prefix = match kind {
        ItemKind::Run => "RUN#",
        ItemKind::Dataset => "DS#",
    };
    key(user_pk(owner), format!("{prefix}{item_id}"))
}

/// The keys without repeats (a batch read refuses a key twice), in their first order.
fn dedup_keys(keys: Vec<Item>) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .filter(|key| {
            let pk = match key.get("pk") {
                Some(AttributeValue::S(text)) => text.clone(),
                _ => String::new(),
            };
            let sk = match key.get("sk") {
                Some(AttributeValue::S(text)) => text.clone(),
                _ => String::new(),
            };
            seen.insert((pk, sk))
        })
        .collect()
}

/// The key of the pointer listing an item as shared with `grantee`.
fn shared_key(grantee: &str, kind: ItemKind, item_id: &str) -> Item {
    key(
        format!("SHARED#{grantee}"),
        format!("{}#{item_id}", kind.as_str()),
    )
}

fn audit_pk(owner: &UserId, kind: ItemKind, item_id: &str) -> String {
    format!("U#{}#A#{}#{item_id}", owner.as_str(), kind.as_str())
}

const CHALLENGES_PK: &str = "CHALLENGES";

fn challenge_key(challenge_id: &str) -> Item {
    key(CHALLENGES_PK, format!("C#{challenge_id}"))
}

fn submissions_pk(challenge_id: &str) -> String {
    format!("CHALLENGE#{challenge_id}")
}

fn records_pk(owner: &UserId, run_id: &str) -> String {
    format!("U#{}#R#{run_id}", owner.as_str())
}

fn index_pk(owner: &UserId, run_id: &str) -> String {
    format!("U#{}#X#{run_id}", owner.as_str())
}

fn record_sk(position: usize, model_order: usize) -> String {
    format!("{position:010}#{model_order:05}")
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The S3 folder of a user: a hash, so user ids never shape object keys.
fn owner_prefix(owner: &UserId) -> String {
    hex(&sha2::Sha256::digest(owner.as_str().as_bytes())[..16])
}

fn session_key(session_id: &str) -> String {
    hex(&sha2::Sha256::digest(session_id.as_bytes()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_secs() as i64)
}

/// Now as stored: RFC 3339 UTC with milliseconds (fixed width, so text order is time order).
fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let whole = aws_smithy_types::DateTime::from_secs(now.as_secs() as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    format!(
        "{}.{:03}Z",
        whole.trim_end_matches('Z'),
        now.subsec_millis()
    )
}

/// The approximate stored size of an item (names and values).
fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_bytes(value))
        .sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
        AttributeValue::M(map) => item_bytes(map) + 3,
        AttributeValue::L(list) => list.iter().map(value_bytes).sum::<usize>() + 3,
        _ => 1,
    }
}

async fn backoff(attempt: u32) {
    let delay = FIRST_BACKOFF
        .saturating_mul(1 << attempt.min(10))
        .min(MAX_BACKOFF);
    tokio::time::sleep(delay).await;
}

/// The sort and filter values of a record, kept beside its body so that pages are chosen from
/// small projections.
#[derive(Debug, Clone)]
struct IndexEntry {
    sk: String,
    /// The record's dataset index (from the item's `idx`, else its body; its position when
    /// neither has it).
    index: usize,
    position: usize,
    model_order: usize,
    model: String,
    variant: String,
    failed: bool,
    latency: Option<f64>,
    scores: HashMap<String, f64>,
}

/// A per-user JSON document: its item's sort key and what reading and saving it are called.
#[derive(Clone, Copy)]
struct UserDocument {
    sort: &'static str,
    reading: &'static str,
    saving: &'static str,
}

/// The user's saved form settings.
const SETTINGS: UserDocument = UserDocument {
    sort: "SETTINGS",
    reading: "reading settings",
    saving: "saving settings",
};

/// The user's own quotas, set by a facilitator.
const QUOTAS: UserDocument = UserDocument {
    sort: "QUOTAS",
    reading: "reading quotas",
    saving: "saving quotas",
};

impl DynamoStore {
    /// A store over `config`'s table and bucket, with clients from `sdk_config` (S3 in path
    /// style when an endpoint override such as a local test server is set).
    pub fn new(
        sdk_config: &aws_config::SdkConfig,
        config: DynamoConfig,
    ) -> Result<DynamoStore, StoreError> {
        let uploads_dir = config.local_dir.join("uploads");
        let datasets_dir = config.local_dir.join("datasets");
        for dir in [&uploads_dir, &datasets_dir] {
            crate::private_fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.clone(),
                what: "creating a directory",
                source,
            })?;
        }
        // A local S3 (a test server) has no per-bucket host names.
        let local_s3 = sdk_config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|url| !url.is_empty());
        let s3_config = aws_sdk_s3::config::Builder::from(sdk_config)
            .force_path_style(local_s3)
            .build();
        let requests = Arc::new(AtomicU64::new(0));
        let dynamo_config = aws_sdk_dynamodb::config::Builder::from(sdk_config)
            .interceptor(CountRequests(requests.clone()))
            .build();
        Ok(DynamoStore {
            dynamo: DynamoClient::from_conf(dynamo_config),
            requests,
            reads: Arc::default(),
            s3: S3Client::from_conf(s3_config),
            table: config.table,
            bucket: config.bucket,
            uploads_dir,
            datasets_dir,
            dataset_cache_bytes: crate::disk_cache::DEFAULT_DATASET_CACHE_BYTES,
            indexes: Arc::default(),
            matrices: Arc::default(),
        })
    }

    /// The same store keeping at most `bytes` of dataset copies on the local disk (least
    /// recently used removed first; the data bucket keeps every dataset).
    pub fn with_dataset_cache_limit(mut self, bytes: u64) -> DynamoStore {
        self.dataset_cache_bytes = bytes;
        self
    }

    /// Removes the least recently used local dataset copies over the bound, never `keep` (the
    /// copy just added, about to be read).
    async fn bound_dataset_copies(&self, keep: &Path) -> Result<(), StoreError> {
        let (dir, limit, keep) = (
            self.datasets_dir.clone(),
            self.dataset_cache_bytes,
            keep.to_path_buf(),
        );
        let evicting = dir.clone();
        tokio::task::spawn_blocking(move || crate::disk_cache::evict(&evicting, limit, &keep))
            .await
            .unwrap_or_else(|error| Err(std::io::Error::other(error.to_string())))
            .map(drop)
            .map_err(|source| StoreError::Io {
                path: dir,
                what: "keeping the local dataset copies within their bound",
                source,
            })
    }

    /// Creates the table as the app stack defines it (on demand, the `by_created` and
    /// `running` indexes), for tests and local trials; the deployed table comes from the stack.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key_element = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let build =
            |error: aws_sdk_dynamodb::error::BuildError| self.aws("creating the table", error);
        self.dynamo
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(
                ["pk", "sk", "ckey", "running"]
                    .into_iter()
                    .map(attribute)
                    .collect::<Result<_, _>>()
                    .map_err(build)?,
            ))
            .key_schema(key_element("pk", KeyType::Hash).map_err(build)?)
            .key_schema(key_element("sk", KeyType::Range).map_err(build)?)
            .local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name("by_created")
                    .key_schema(key_element("pk", KeyType::Hash).map_err(build)?)
                    .key_schema(key_element("ckey", KeyType::Range).map_err(build)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build)?,
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("running")
                    .key_schema(key_element("running", KeyType::Hash).map_err(build)?)
                    .key_schema(key_element("sk", KeyType::Range).map_err(build)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .map_err(build)?,
            )
            .send()
            .await
            .map_err(|error| self.aws("creating the table", error))?;
        Ok(())
    }

    /// The keys of every run marked running (the sparse `running` index, all pages).
    async fn running_keys(&self, what: &'static str) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .dynamo
                .query()
                .table_name(&self.table)
                .index_name("running")
                .key_condition_expression("running = :one")
                .expression_attribute_values(":one", s("1"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| self.aws(what, error))?;
            keys.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(keys),
            }
        }
    }

    /// The grants set of an item (`None`: no such item).
    async fn item_grants(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        what: &'static str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item_key(owner, kind, item_id)))
            .projection_expression("pk, grants")
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.aws(what, error))?;
        self.reads.by_key(out.item.as_slice());
        Ok(out.item.map(|item| match item.get("grants") {
            Some(AttributeValue::Ss(grants)) => grants.clone(),
            _ => Vec::new(),
        }))
    }

    /// Deletes the sharing pointers and audit entries of an item being deleted.
    async fn delete_item_extras(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grants: Vec<String>,
    ) -> Result<(), StoreError> {
        let mut keys: Vec<Item> = grants
            .iter()
            .map(|grantee| shared_key(grantee, kind, item_id))
            .collect();
        keys.extend(
            self.query_partition(
                &audit_pk(owner, kind, item_id),
                None,
                Some("pk, #sk"),
                usize::MAX,
                "deleting the audit",
            )
            .await?,
        );
        if keys.is_empty() {
            return Ok(());
        }
        self.batch_delete(keys, "deleting grants and audit").await
    }

    fn challenge_row(&self, item: &Item) -> Result<ChallengeRow, StoreError> {
        let sk = self.text(item, "sk", "challenge")?;
        let id = sk.trim_start_matches("C#").to_string();
        Ok(ChallengeRow {
            owner: UserId::new(self.text(item, "owner", &id)?),
            created: self.text(item, "created", &id)?.to_string(),
            open: matches!(item.get("open"), Some(AttributeValue::Bool(true))),
            spec: self.json(self.text(item, "spec", &id)?, &id, "spec")?,
            id,
        })
    }

    /// DynamoDB requests sent so far (every attempt, retries included).
    pub fn dynamo_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// What the reads of this store (and its clones) brought back so far.
    pub fn dynamo_reads(&self) -> DynamoReads {
        DynamoReads {
            items: self.reads.items.load(Ordering::Relaxed),
            bytes: self.reads.bytes.load(Ordering::Relaxed),
            units: self.reads.units.load(Ordering::Relaxed),
        }
    }

    /// Whether a conditional update was applied: `false` when its condition did not hold
    /// (the item is not there, or not in the state the update needs), an error otherwise.
    fn conditional_update<R: std::fmt::Debug + Send + Sync + 'static>(
        &self,
        what: &'static str,
        result: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<
                aws_sdk_dynamodb::operation::update_item::UpdateItemError,
                R,
            >,
        >,
    ) -> Result<bool, StoreError> {
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(self.aws(what, error)),
        }
    }

    fn aws(&self, what: &'static str, error: impl std::error::Error + 'static) -> StoreError {
        // The chain of causes ("service error: ThrottlingException: ..."), not the SDK's debug
        // dump of the raw response.
        StoreError::Aws {
            location: self.location(),
            what,
            message: crate::error_chain(&error),
        }
    }

    fn bad_item(&self, key: &str, problem: impl Into<String>) -> StoreError {
        StoreError::BadItem {
            location: self.location(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn text<'a>(&self, item: &'a Item, name: &str, key: &str) -> Result<&'a str, StoreError> {
        match item.get(name) {
            Some(AttributeValue::S(text)) => Ok(text),
            _ => Err(self.bad_item(key, format!("attribute `{name}` is missing or not text"))),
        }
    }

    fn opt_text<'a>(&self, item: &'a Item, name: &str) -> Option<&'a str> {
        match item.get(name) {
            Some(AttributeValue::S(text)) => Some(text),
            _ => None,
        }
    }

    fn number<T: std::str::FromStr>(
        &self,
        item: &Item,
        name: &str,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        match item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(text)) => text.parse().map(Some).map_err(|_| {
                self.bad_item(key, format!("attribute `{name}` is not a valid number"))
            }),
            Some(_) => Err(self.bad_item(key, format!("attribute `{name}` is not a number"))),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        text: &str,
        key: &str,
        column: &'static str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|source| StoreError::Json {
            path: PathBuf::from(self.location()),
            key: key.to_string(),
            column,
            source,
        })
    }

    fn run_row(&self, owner: &UserId, item: &Item) -> Result<RunRow, StoreError> {
        let sk = self.text(item, "sk", "run")?;
        let id = sk.trim_start_matches("RUN#").to_string();
        Ok(RunRow {
            owner: owner.clone(),
            created: self.text(item, "created", &id)?.to_string(),
            config: self.json(self.text(item, "config", &id)?, &id, "config")?,
            status: RunStatus::parse(self.text(item, "status", &id)?),
            total: self.number(item, "total", &id)?,
            summary: self
                .opt_text(item, "summary")
                .map(|text| self.json(text, &id, "summary"))
                .transpose()?,
            name: self.opt_text(item, "name").unwrap_or_default().to_string(),
            notes: self.opt_text(item, "notes").unwrap_or_default().to_string(),
            id,
        })
    }

    fn dataset_file(&self, dataset_id: &str, format: &str) -> PathBuf {
        // Ids are random hex made here, never user text.
        self.datasets_dir.join(format!("{dataset_id}.{format}"))
    }

    fn dataset_object(owner: &UserId, dataset_id: &str, format: &str) -> String {
        format!("datasets/{}/{dataset_id}.{format}", owner_prefix(owner))
    }

    fn dataset_row(&self, owner: &UserId, item: &Item) -> Result<DatasetRow, StoreError> {
        let sk = self.text(item, "sk", "dataset")?;
        let id = sk.trim_start_matches("DS#").to_string();
        let format = self.text(item, "format", &id)?.to_string();
        Ok(DatasetRow {
            owner: owner.clone(),
            name: self.text(item, "name", &id)?.to_string(),
            size_bytes: self.number(item, "size_bytes", &id)?.unwrap_or(0),
            n_records: self.number(item, "n_records", &id)?.unwrap_or(0),
            fields: self.json(self.text(item, "fields", &id)?, &id, "fields")?,
            created: self.text(item, "created", &id)?.to_string(),
            path: self.dataset_file(&id, &format),
            format,
            id,
        })
    }

    /// A user's JSON document (`document`'s item of the user's partition), if saved.
    async fn user_document(
        &self,
        user: &UserId,
        document: UserDocument,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Some(item) = self
            .get(key(user_pk(user), document.sort), document.reading)
            .await?
        else {
            return Ok(None);
        };
        let text = self.text(&item, "value", user.as_str())?;
        self.json(text, user.as_str(), "value").map(Some)
    }

    /// Saves a user's JSON document (`value`, serialized), replacing the earlier one.
    async fn put_user_document(
        &self,
        user: &UserId,
        document: UserDocument,
        value: String,
    ) -> Result<(), StoreError> {
        let mut item = key(user_pk(user), document.sort);
        item.insert("value".into(), s(value));
        item.insert("updated".into(), s(now_rfc3339()));
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|error| self.aws(document.saving, error))?;
        Ok(())
    }

    async fn get(&self, key: Item, what: &'static str) -> Result<Option<Item>, StoreError> {
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.aws(what, error))?;
        self.reads.by_key(out.item.as_slice());
        Ok(out.item)
    }

    /// Every item of a partition (whose sort key passes `after`, when given), a page at a time,
    /// until `limit` items; `projection` names the attributes read.
    async fn query_partition(
        &self,
        pk: &str,
        after: Option<&str>,
        projection: Option<&str>,
        limit: usize,
        what: &'static str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        if limit == 0 {
            // DynamoDB refuses `Limit: 0`.
            return Ok(items);
        }
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .dynamo
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take())
                .limit((limit - items.len()).min(1000) as i32);
            request = match after {
                Some(after) => request
                    .key_condition_expression("pk = :pk AND sk > :after")
                    .expression_attribute_values(":after", s(after)),
                None => request.key_condition_expression("pk = :pk"),
            };
            if let Some(projection) = projection {
                request = request
                    .projection_expression(projection)
                    .expression_attribute_names("#sk", "sk");
            }
            let out = request
                .send()
                .await
                .map_err(|error| self.aws(what, error))?;
            let page = out.items.unwrap_or_default();
            self.reads.query_page(&page);
            items.extend(page);
            match out.last_evaluated_key {
                Some(key) if items.len() < limit => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes items by key in batches of 25, retrying unprocessed ones with backoff.
    async fn batch_delete(&self, keys: Vec<Item>, what: &'static str) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(|error| self.aws(what, error))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write_all(requests, what).await
    }

    /// `requests` as `BatchWriteItem`s of at most 25 (DynamoDB's limit), one after the other.
    async fn batch_write_all(
        &self,
        mut requests: Vec<WriteRequest>,
        what: &'static str,
    ) -> Result<(), StoreError> {
        while !requests.is_empty() {
            let chunk: Vec<WriteRequest> = requests.drain(..requests.len().min(25)).collect();
            self.batch_write(chunk, what).await?;
        }
        Ok(())
    }

    /// One `BatchWriteItem` of at most 25 requests, with its unprocessed items sent again
    /// (capped exponential backoff, at most [`MAX_ATTEMPTS`] rounds).
    async fn batch_write(
        &self,
        mut pending: Vec<WriteRequest>,
        what: &'static str,
    ) -> Result<(), StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let out = self
                .dynamo
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|error| self.aws(what, error))?;
            pending = out
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Unprocessed {
            location: self.location(),
            what,
            left: pending.len(),
        })
    }

    /// Reads items by key (at most 100 a request), retrying unprocessed keys with backoff;
    /// the items come back in any order.
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        what: &'static str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt >= MAX_ATTEMPTS {
                    return Err(StoreError::Unprocessed {
                        location: self.location(),
                        what,
                        left: pending.len(),
                    });
                }
                if attempt > 0 {
                    backoff(attempt).await;
                }
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|error| self.aws(what, error))?;
                let out = self
                    .dynamo
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|error| self.aws(what, error))?;
                if let Some(mut responses) = out.responses {
                    let read = responses.remove(&self.table).unwrap_or_default();
                    self.reads.by_key(&read);
                    items.extend(read);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                    .map(|keys| keys.keys)
                    .unwrap_or_default();
            }
        }
        Ok(items)
    }

    /// The item of a record: its sort and filter values, and its body inline or (when too
    /// large) in S3 at `spill`.
    fn record_item(&self, pk: &str, row: &RecordRow, body: &str, spill: Option<&str>) -> Item {
        let mut item = key(pk, record_sk(row.position, row.model_order));
        item.insert("model".into(), s(&row.model));
        if !row.variant.is_empty() {
            // `vlabel`, not `variant`: no reserved word in the projection below.
            item.insert("vlabel".into(), s(&row.variant));
        }
        item.insert("failed".into(), AttributeValue::Bool(row.error.is_some()));
        item.insert("idx".into(), n(row.index));
        if let Some(latency) = row.latency_ms.filter(|latency| latency.is_finite()) {
            item.insert("latency".into(), n(latency));
        }
        let scores: Item = row
            .scores
            .iter()
            .filter(|score| score.value.as_f64().is_finite())
            .map(|score| (score.name.clone(), n(score.value.as_f64())))
            .collect();
        item.insert("scores".into(), AttributeValue::M(scores));
        match spill {
            Some(object) => item.insert("spill".into(), s(object)),
            None => item.insert("body".into(), s(body)),
        };
        item
    }

    async fn record_row(&self, item: &Item) -> Result<RecordRow, StoreError> {
        let sk = self.text(item, "sk", "record")?;
        let body = match (self.opt_text(item, "body"), self.opt_text(item, "spill")) {
            (Some(body), _) => body.to_string(),
            (None, Some(object)) => {
                let out = self
                    .s3
                    .get_object()
                    .bucket(&self.bucket)
                    .key(object)
                    .send()
                    .await
                    .map_err(|error| self.aws("reading a spilled record", error))?;
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|error| self.aws("reading a spilled record", error))?
                    .into_bytes();
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| self.bad_item(sk, "the spilled body is not UTF-8"))?
            }
            (None, None) => return Err(self.bad_item(sk, "record has neither body nor spill")),
        };
        self.json(&body, sk, "body")
    }

    fn index_entry(&self, item: &Item) -> Result<IndexEntry, StoreError> {
        let sk = self.text(item, "sk", "record")?.to_string();
        let (position, model_order) = sk
            .split_once('#')
            .and_then(|(position, order)| Some((position.parse().ok()?, order.parse().ok()?)))
            .ok_or_else(|| self.bad_item(&sk, "the sort key is not position#order"))?;
        let scores = match item.get("scores") {
            Some(AttributeValue::M(map)) => map
                .iter()
                .filter_map(|(name, value)| match value {
                    AttributeValue::N(text) => text.parse().ok().map(|value| (name.clone(), value)),
                    _ => None,
                })
                .collect(),
            _ => HashMap::new(),
        };
        let index = match self.number::<usize>(item, "idx", &sk)? {
            Some(index) => index,
            // Stored before items had `idx`: the body has it.
            None => self
                .opt_text(item, "body")
                .and_then(|body| serde_json::from_str::<serde_json::Value>(body).ok())
                .and_then(|body| body.get("index")?.as_u64())
                .map_or(position, |index| index as usize),
        };
        Ok(IndexEntry {
            index,
            model: self.text(item, "model", &sk)?.to_string(),
            variant: self
                .opt_text(item, "vlabel")
                .unwrap_or_default()
                .to_string(),
            failed: matches!(item.get("failed"), Some(AttributeValue::Bool(true))),
            latency: self.number(item, "latency", &sk)?,
            scores,
            position,
            model_order,
            sk,
        })
    }

    /// Stores record items, each with a conditional put (`attribute_not_exists`), at most
    /// [`PUTS_IN_FLIGHT`] at a time, and says which were stored (`Some(failed)`) and the first
    /// error. A put refused because the item exists is this call's own earlier attempt when the
    /// stored item is the one being written (the SDK retried a put whose answer was lost), and a
    /// duplicate otherwise.
    async fn put_records(
        &self,
        run_id: &str,
        items: Vec<(Item, usize, String)>,
    ) -> (Vec<Option<bool>>, Option<StoreError>) {
        use futures::StreamExt;
        let what = "storing records";
        let puts = futures::stream::iter(items.into_iter().map(|(item, position, model)| async move {
            let failed = matches!(item.get("failed"), Some(AttributeValue::Bool(true)));
            let result = self
                .dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => Ok(failed),
                Err(error) => match error.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(exists)) => {
                        if exists.item.as_ref() == Some(&item) {
                            Ok(failed)
                        } else {
                            Err(StoreError::DuplicateRecord {
                                run_id: run_id.to_string(),
                                model,
                                position,
                            })
                        }
                    }
                    _ => Err(self.aws(what, error)),
                },
            }
        }))
        .buffered(PUTS_IN_FLIGHT);
        let results: Vec<Result<bool, StoreError>> = puts.collect().await;
        let mut first_error = None;
        let stored = results
            .into_iter()
            .map(|result| match result {
                Ok(failed) => Some(failed),
                Err(error) => {
                    first_error.get_or_insert(error);
                    None
                }
            })
            .collect();
        (stored, first_error)
    }

    /// Writes the score index chunks of stored rows (a fresh sort key per call and chunk).
    async fn index_rows(
        &self,
        owner: &UserId,
        run_id: &str,
        write_id: &str,
        rows: &[&RecordRow],
    ) -> Result<(), StoreError> {
        let what = "indexing scores";
        let mut chunks: Vec<PackedChunk> = Vec::new();
        let mut bytes = usize::MAX;
        for row in rows {
            let packed = PackedRow(
                row.position,
                row.model_order,
                row.index,
                row.error.is_some(),
                row.latency_ms.filter(|latency| latency.is_finite()),
                row.scores
                    .iter()
                    .map(|score| (score.name.clone(), score.value.as_f64()))
                    .filter(|(_, value)| value.is_finite())
                    .collect(),
            );
            let size = serde_json::to_string(&packed).map_or(0, |text| text.len())
                + row.model.len()
                + row.variant.len()
                + 16;
            if bytes.saturating_add(size) > INDEX_CHUNK_BYTES {
                chunks.push(PackedChunk::default());
                bytes = 0;
            }
            bytes += size;
            if let Some(chunk) = chunks.last_mut() {
                chunk
                    .c
                    .entry(row.model_order)
                    .or_insert_with(|| (row.model.clone(), row.variant.clone()));
                chunk.r.push(packed);
            }
        }
        let pk = index_pk(owner, run_id);
        let mut requests = Vec::with_capacity(chunks.len());
        for (n_chunk, chunk) in chunks.iter().enumerate() {
            let mut item = key(pk.clone(), format!("{write_id}#{n_chunk:05}"));
            item.insert(
                "cells".into(),
                s(serde_json::to_string(chunk).unwrap_or_default()),
            );
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|error| self.aws(what, error))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write_all(requests, what).await
    }

    /// The score index of a run of `owner` (one entry per stored row, in export order): its
    /// index chunks, or its record items when the chunks hold fewer rows than the run's
    /// counters; kept in memory once the run is not running.
    async fn run_index(
        &self,
        owner: &UserId,
        run_id: &str,
    ) -> Result<Arc<Vec<IndexEntry>>, StoreError> {
        let Some(run) = self
            .get(
                key(user_pk(owner), format!("RUN#{run_id}")),
                "reading records",
            )
            .await?
        else {
            return Ok(Arc::default());
        };
        let n_rows = self.number::<usize>(&run, "n_ok", run_id)?.unwrap_or(0)
            + self.number::<usize>(&run, "n_failed", run_id)?.unwrap_or(0);
        let running = self.opt_text(&run, "status") == Some(RunStatus::Running.as_str());
        {
            let cached = self
                .indexes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some((.., entries)) = cached.iter().find(|(cached_owner, id, rows, _)| {
                cached_owner == owner && id == run_id && *rows == n_rows
            }) {
                return Ok(entries.clone());
            }
        }
        let chunks = self
            .query_partition(
                &index_pk(owner, run_id),
                None,
                None,
                MAX_QUERY_ROWS,
                "reading the score index",
            )
            .await?;
        let mut entries: Vec<IndexEntry> = Vec::new();
        for item in &chunks {
            let sk = self.text(item, "sk", "score index")?;
            let chunk: PackedChunk = self.json(self.text(item, "cells", sk)?, sk, "cells")?;
            for PackedRow(position, model_order, index, failed, latency, scores) in chunk.r {
                let (model, variant) = chunk.c.get(&model_order).cloned().unwrap_or_default();
                entries.push(IndexEntry {
                    sk: record_sk(position, model_order),
                    index,
                    position,
                    model_order,
                    model,
                    variant,
                    failed,
                    latency,
                    scores: scores.into_iter().collect(),
                });
            }
        }
        entries.sort_by_key(|entry| (entry.position, entry.model_order));
        entries.dedup_by_key(|entry| (entry.position, entry.model_order));
        if entries.len() < n_rows {
            // Rows stored without their index: read the record items' sort values.
            let items = self
                .query_partition(
                    &records_pk(owner, run_id),
                    None,
                    None,
                    MAX_QUERY_ROWS,
                    "reading records",
                )
                .await?;
            entries = items
                .iter()
                .map(|item| self.index_entry(item))
                .collect::<Result<_, _>>()?;
        }
        let entries = Arc::new(entries);
        if !running {
            let mut cached = self
                .indexes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            cached.retain(|(cached_owner, id, ..)| !(cached_owner == owner && id == run_id));
            cached.push_back((owner.clone(), run_id.to_string(), n_rows, entries.clone()));
            while cached.len() > CACHED_INDEXES {
                cached.pop_front();
            }
        }
        Ok(entries)
    }

    /// Adds to a run's stored counters (the run must exist).
    async fn add_counts(
        &self,
        owner: &UserId,
        run_id: &str,
        ok: i64,
        failed: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .dynamo
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(owner), format!("RUN#{run_id}"))))
            .update_expression("ADD n_ok :ok, n_failed :failed")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":ok", n(ok))
            .expression_attribute_values(":failed", n(failed))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::UnknownRun {
                    run_id: run_id.to_string(),
                })
            }
            Err(error) => Err(self.aws("counting records", error)),
        }
    }

    /// The spill objects the stored items of these rows point at.
    async fn spills_in_use(
        &self,
        pk: &str,
        rows: &[RecordRow],
    ) -> std::collections::HashSet<String> {
        let keys: Vec<Item> = rows
            .iter()
            .map(|row| key(pk, record_sk(row.position, row.model_order)))
            .collect();
        self.batch_get(keys, "checking spilled records")
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|item| self.opt_text(item, "spill").map(str::to_string))
            .collect()
    }

    async fn delete_objects(
        &self,
        objects: Vec<String>,
        what: &'static str,
    ) -> Result<(), StoreError> {
        for object in objects {
            self.s3
                .delete_object()
                .bucket(&self.bucket)
                .key(object)
                .send()
                .await
                .map_err(|error| self.aws(what, error))?;
        }
        Ok(())
    }
}

impl Store for DynamoStore {
    fn location(&self) -> String {
        format!("dynamodb:{} (bucket {})", self.table, self.bucket)
    }

    fn create_run(
        &self,
        owner: &UserId,
        run_id: &str,
        config: &serde_json::Value,
        total: usize,
    ) -> StoreFuture<'_, ()> {
        let name = crate::requested_name(config);
        let (owner, run_id, config) = (owner.clone(), run_id.to_string(), config.to_string());
        Box::pin(async move {
            let created = now_rfc3339();
            let mut item = key(user_pk(&owner), format!("RUN#{run_id}"));
            item.insert("ckey".into(), s(format!("RUN#{created}#{run_id}")));
            item.insert("created".into(), s(created));
            item.insert("config".into(), s(config));
            if !name.is_empty() {
                item.insert("name".into(), s(name));
            }
            item.insert("status".into(), s(RunStatus::Running.as_str()));
            item.insert("running".into(), s("1"));
            item.insert("total".into(), n(total));
            item.insert("n_ok".into(), n(0));
            item.insert("n_failed".into(), n(0));
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|error| self.aws("creating run", error))?;
            Ok(())
        })
    }

    fn finish_run(
        &self,
        owner: &UserId,
        run_id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
    ) -> StoreFuture<'_, ()> {
        let (owner, run_id, summary) = (owner.clone(), run_id.to_string(), summary.to_string());
        Box::pin(async move {
            let expression = if status == RunStatus::Running {
                "SET #status = :status, summary = :summary, running = :one"
            } else {
                "SET #status = :status, summary = :summary REMOVE running"
            };
            let mut request = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .update_expression(expression)
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":summary", s(summary));
            if status == RunStatus::Running {
                request = request.expression_attribute_values(":one", s("1"));
            }
            match request.send().await {
                Ok(_) => Ok(()),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
                {
                    Err(StoreError::UnknownRun { run_id })
                }
                Err(error) => Err(self.aws("finishing run", error)),
            }
        })
    }

    fn run(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, Option<RunRow>> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            self.get(key(user_pk(&owner), format!("RUN#{run_id}")), "reading run")
                .await?
                .map(|item| self.run_row(&owner, &item))
                .transpose()
        })
    }

    fn runs(&self, owner: &UserId, limit: usize) -> StoreFuture<'_, Vec<RunRow>> {
        let owner = owner.clone();
        Box::pin(async move {
            let mut runs = Vec::new();
            let mut start: Option<Item> = None;
            while runs.len() < limit {
                let out = self
                    .dynamo
                    .query()
                    .table_name(&self.table)
                    .index_name("by_created")
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk AND begins_with(ckey, :run)")
                    .expression_attribute_values(":pk", s(user_pk(&owner)))
                    .expression_attribute_values(":run", s("RUN#"))
                    .scan_index_forward(false)
                    .limit((limit - runs.len()).min(1000) as i32)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|error| self.aws("listing runs", error))?;
                let page = out.items.unwrap_or_default();
                self.reads.query_page(&page);
                for item in page {
                    runs.push(self.run_row(&owner, &item)?);
                }
                match out.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
            runs.truncate(limit);
            Ok(runs)
        })
    }

    fn delete_run(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            let run_key = key(user_pk(&owner), format!("RUN#{run_id}"));
            let Some(run_item) = self.get(run_key.clone(), "deleting run").await? else {
                return Ok(false);
            };
            let grants = match run_item.get("grants") {
                Some(AttributeValue::Ss(grants)) => grants.clone(),
                _ => Vec::new(),
            };
            self.delete_item_extras(&owner, ItemKind::Run, &run_id, grants)
                .await?;
            // Records first (a page at a time), then the run: a failure halfway leaves a run
            // with fewer records, never records without a run.
            let pk = records_pk(&owner, &run_id);
            loop {
                let items = self
                    .query_partition(&pk, None, Some("pk, #sk, spill"), 1000, "deleting records")
                    .await?;
                if items.is_empty() {
                    break;
                }
                let spilled: Vec<String> = items
                    .iter()
                    .filter_map(|item| self.opt_text(item, "spill").map(str::to_string))
                    .collect();
                let keys = items
                    .into_iter()
                    .map(|mut item| {
                        item.retain(|name, _| name == "pk" || name == "sk");
                        item
                    })
                    .collect();
                self.batch_delete(keys, "deleting records").await?;
                self.delete_objects(spilled, "deleting spilled records")
                    .await?;
            }
            let index = index_pk(&owner, &run_id);
            loop {
                let keys = self
                    .query_partition(
                        &index,
                        None,
                        Some("pk, #sk"),
                        1000,
                        "deleting the score index",
                    )
                    .await?;
                if keys.is_empty() {
                    break;
                }
                self.batch_delete(keys, "deleting the score index").await?;
            }
            self.dynamo
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(run_key))
                .send()
                .await
                .map_err(|error| self.aws("deleting run", error))?;
            self.indexes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .retain(|(cached_owner, id, ..)| !(*cached_owner == owner && *id == run_id));
            self.matrices.forget(&owner, &run_id);
            Ok(true)
        })
    }

    fn mark_interrupted(&self) -> StoreFuture<'_, Vec<(UserId, String)>> {
        Box::pin(async move {
            let running = self.running_keys("finding running runs").await?;
            let mut interrupted = Vec::new();
            for item in running {
                let pk = self.text(&item, "pk", "running run")?.to_string();
                let sk = self.text(&item, "sk", "running run")?.to_string();
                let (Some(owner), Some(run_id)) = (pk.strip_prefix("U#"), sk.strip_prefix("RUN#"))
                else {
                    continue;
                };
                // Only runs no lease was ever taken for: leased runs are resumed by whichever
                // task takes their expired lease (`orphaned_runs`).
                let result = self
                    .dynamo
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(pk.clone(), sk.clone())))
                    .update_expression("SET #status = :interrupted REMOVE running")
                    .condition_expression(
                        "#status = :running AND attribute_not_exists(lease_until)",
                    )
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":interrupted", s(RunStatus::Interrupted.as_str()))
                    .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
                    .send()
                    .await;
                match result {
                    Ok(_) => interrupted.push((UserId::new(owner), run_id.to_string())),
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|error| error.is_conditional_check_failed_exception()) => {
                    }
                    Err(error) => return Err(self.aws("marking interrupted runs", error)),
                }
            }
            interrupted.sort();
            Ok(interrupted)
        })
    }

    fn acquire_lease(
        &self,
        owner: &UserId,
        run_id: &str,
        holder: &str,
        ttl_secs: u64,
    ) -> StoreFuture<'_, bool> {
        let (owner, run_id, holder) = (owner.clone(), run_id.to_string(), holder.to_string());
        Box::pin(async move {
            let now = unix_now();
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .update_expression("SET lease_holder = :holder, lease_until = :until")
                .condition_expression(
                    "#status = :running AND (attribute_not_exists(lease_until) OR lease_holder = :holder OR lease_until < :now)",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":until", n(now.saturating_add(ttl_secs.min(i64::MAX as u64) as i64)))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
                .send()
                .await;
            self.conditional_update("taking a run lease", result)
        })
    }

    fn release_lease(&self, owner: &UserId, run_id: &str, holder: &str) -> StoreFuture<'_, ()> {
        let (owner, run_id, holder) = (owner.clone(), run_id.to_string(), holder.to_string());
        Box::pin(async move {
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .update_expression("SET lease_until = :zero")
                .condition_expression("lease_holder = :holder")
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(error) => Err(self.aws("releasing a run lease", error)),
            }
        })
    }

    fn request_cancel(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            // The key holds the owner: only the owner's own, still running run is marked.
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .update_expression("SET cancel_requested = :yes")
                .condition_expression("attribute_exists(pk) AND #status = :running")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
                .send()
                .await;
            self.conditional_update("requesting a run's cancellation", result)
        })
    }

    fn cancel_requested(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, bool> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            let out = self
                .dynamo
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .projection_expression("cancel_requested")
                .consistent_read(true)
                .send()
                .await
                .map_err(|error| self.aws("reading a run's cancellation request", error))?;
            self.reads.by_key(out.item.as_slice());
            Ok(matches!(
                out.item
                    .as_ref()
                    .and_then(|item| item.get("cancel_requested")),
                Some(AttributeValue::Bool(true))
            ))
        })
    }

    fn orphaned_runs(&self) -> StoreFuture<'_, Vec<(UserId, String)>> {
        Box::pin(async move {
            let keys = self.running_keys("finding orphaned runs").await?;
            // The index holds keys only (and is eventually consistent): each run's lease is read
            // from the table itself.
            let now = unix_now();
            let mut orphaned = Vec::new();
            for mut item in keys {
                item.retain(|name, _| name == "pk" || name == "sk");
                let Some(run) = self.get(item, "finding orphaned runs").await? else {
                    continue;
                };
                let until: Option<i64> = self.number(&run, "lease_until", "run")?;
                let running = self.opt_text(&run, "status") == Some(RunStatus::Running.as_str());
                let (Some(pk), Some(sk)) = (self.opt_text(&run, "pk"), self.opt_text(&run, "sk"))
                else {
                    continue;
                };
                if let (true, Some(until), Some(owner), Some(run_id)) = (
                    running,
                    until,
                    pk.strip_prefix("U#"),
                    sk.strip_prefix("RUN#"),
                ) && until < now
                {
                    orphaned.push((UserId::new(owner), run_id.to_string()));
                }
            }
            orphaned.sort();
            Ok(orphaned)
        })
    }

    fn annotate_run(
        &self,
        owner: &UserId,
        run_id: &str,
        name: &str,
        notes: &str,
    ) -> StoreFuture<'_, bool> {
        let (owner, run_id, name, notes) = (
            owner.clone(),
            run_id.to_string(),
            name.to_string(),
            notes.to_string(),
        );
        Box::pin(async move {
            // The key holds the owner: only the owner's own run is changed.
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .update_expression("SET #name = :name, notes = :notes")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(name))
                .expression_attribute_values(":notes", s(notes))
                .send()
                .await;
            self.conditional_update("naming a run", result)
        })
    }

    fn insert_records(
        &self,
        owner: &UserId,
        run_id: &str,
        rows: Vec<RecordRow>,
    ) -> StoreFuture<'_, ()> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            // The run must be this owner's: rows are never written under a run they lack.
            if self
                .get(
                    key(user_pk(&owner), format!("RUN#{run_id}")),
                    "storing records",
                )
                .await?
                .is_none()
            {
                return Err(StoreError::UnknownRun { run_id });
            }
            let pk = records_pk(&owner, &run_id);
            // This call's id on each of its items: a refused put finds its own item (the SDK
            // retried it) only when the id is this call's, however alike two records are.
            let write_id = random_hex(8);
            let mut items: Vec<(Item, usize, String)> = Vec::with_capacity(rows.len());
            let mut spilled = Vec::new();
            for row in &rows {
                let body = serde_json::to_string(row).unwrap_or_default();
                let mut item = self.record_item(&pk, row, &body, None);
                if item_bytes(&item) > SPILL_BYTES {
                    // A fresh name per call: a duplicate never overwrites the stored body.
                    let object = format!(
                        "records/{}/{run_id}/{}-{}.json",
                        owner_prefix(&owner),
                        record_sk(row.position, row.model_order).replace('#', "-"),
                        random_hex(8)
                    );
                    self.s3
                        .put_object()
                        .bucket(&self.bucket)
                        .key(&object)
                        .content_type("application/json")
                        .body(ByteStream::from(body.into_bytes()))
                        .send()
                        .await
                        .map_err(|error| self.aws("spilling a large record", error))?;
                    item = self.record_item(&pk, row, "", Some(&object));
                    spilled.push(object);
                }
                item.insert("wid".into(), s(&write_id));
                items.push((item, row.position, row.model.clone()));
            }
            let (stored, error) = self.put_records(&run_id, items).await;
            let stored_rows: Vec<&RecordRow> = rows
                .iter()
                .zip(&stored)
                .filter(|(_, stored)| stored.is_some())
                .map(|(row, _)| row)
                .collect();
            // The index before the counters: a reader that sees the counters finds the index
            // holding at least as many rows.
            let (mut n_ok, mut n_failed) = (0i64, 0i64);
            for failed in stored.iter().flatten() {
                if *failed {
                    n_failed += 1;
                } else {
                    n_ok += 1;
                }
            }
            if !stored_rows.is_empty() {
                self.index_rows(&owner, &run_id, &write_id, &stored_rows)
                    .await?;
                self.add_counts(&owner, &run_id, n_ok, n_failed).await?;
            }
            if let Some(error) = error {
                if matches!(error, StoreError::DuplicateRecord { .. }) {
                    // The refused rows' bodies were never referenced; rows stored with them
                    // (this call's other rows) keep theirs.
                    let kept = self.spills_in_use(&pk, &rows).await;
                    spilled.retain(|object| !kept.contains(object));
                    let _ = self.delete_objects(spilled, "removing unused spills").await;
                }
                return Err(error);
            }
            Ok(())
        })
    }

    fn records_after(
        &self,
        owner: &UserId,
        run_id: &str,
        after: Option<RecordKey>,
        limit: usize,
    ) -> StoreFuture<'_, Vec<RecordRow>> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            let after = after.map(|key| record_sk(key.position, key.model_order));
            let items = self
                .query_partition(
                    &records_pk(&owner, &run_id),
                    after.as_deref(),
                    None,
                    limit.min(MAX_PAGE),
                    "reading records",
                )
                .await?;
            let mut rows = Vec::with_capacity(items.len());
            for item in &items {
                rows.push(self.record_row(item).await?);
            }
            Ok(rows)
        })
    }

    fn records_at(
        &self,
        owner: &UserId,
        run_id: &str,
        keys: &[RecordKey],
    ) -> StoreFuture<'_, Vec<RecordRow>> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        let mut keys: Vec<RecordKey> = keys.iter().take(MAX_PAGE).copied().collect();
        keys.sort_by_key(|key| (key.position, key.model_order));
        keys.dedup();
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let pk = records_pk(&owner, &run_id);
            let items = self
                .batch_get(
                    keys.iter()
                        .map(|at| key(pk.clone(), record_sk(at.position, at.model_order)))
                        .collect(),
                    "reading records",
                )
                .await?;
            let mut rows = Vec::with_capacity(items.len());
            for item in &items {
                rows.push(self.record_row(item).await?);
            }
            rows.sort_by_key(|row| (row.position, row.model_order));
            Ok(rows)
        })
    }

    fn query_records(
        &self,
        owner: &UserId,
        run_id: &str,
        query: &RecordQuery,
    ) -> StoreFuture<'_, RecordPage> {
        let (owner, run_id, query) = (owner.clone(), run_id.to_string(), query.clone());
        Box::pin(async move {
            let pk = records_pk(&owner, &run_id);
            let index = self.run_index(&owner, &run_id).await?;
            let entries: Vec<&IndexEntry> = index
                .iter()
                .filter(|entry| {
                    query
                        .model
                        .as_ref()
                        .is_none_or(|model| *model == entry.model)
                        && query
                            .variant
                            .as_ref()
                            .is_none_or(|variant| *variant == entry.variant)
                        && match &query.filter {
                            RecordFilter::All => true,
                            RecordFilter::Failed => entry.failed,
                            RecordFilter::ScoreBelow { score, below } => {
                                !entry.failed
                                    && entry.scores.get(score).is_some_and(|value| value < below)
                            }
                        }
                })
                .collect();
            let total = entries.len();
            // Each row's place in the order, looked up once (not in every comparison).
            let mut sorted: Vec<(RecordCursor, &IndexEntry)> = entries
                .into_iter()
                .map(|entry| {
                    let cursor = RecordCursor {
                        value: match &query.sort {
                            RecordSort::Position => None,
                            RecordSort::Latency => entry.latency,
                            RecordSort::Score(score) => entry.scores.get(score).copied(),
                        }
                        .filter(|value| value.is_finite()),
                        position: entry.position,
                        model_order: entry.model_order,
                    };
                    (cursor, entry)
                })
                .collect();
            let compare = |a: &RecordCursor, b: &RecordCursor| {
                crate::scores::compare_rows(&query.sort, query.descending, a, b)
            };
            // The index is in export order; a stable sort keeps ties there.
            if query.sort != RecordSort::Position || query.descending {
                sorted.sort_by(|(a, _), (b, _)| compare(a, b));
            }
            let start = match (query.start, &query.sort) {
                // By position a cursor's value plays no part.
                (PageStart::After(at), RecordSort::Position) => {
                    PageStart::After(RecordCursor { value: None, ..at })
                }
                (PageStart::Before(at), RecordSort::Position) => {
                    PageStart::Before(RecordCursor { value: None, ..at })
                }
                (start, _) => start,
            };
            let window: Vec<String> = crate::scores::window(
                &sorted,
                start,
                query.limit.min(MAX_PAGE),
                |(cursor, _), at| compare(cursor, at),
            )
            .iter()
            .map(|(_, entry)| entry.sk.clone())
            .collect();
            let keys = window
                .iter()
                .map(|sk| key(pk.clone(), sk.clone()))
                .collect();
            let mut items: HashMap<String, Item> = self
                .batch_get(keys, "reading records")
                .await?
                .into_iter()
                .filter_map(|item| match item.get("sk") {
                    Some(AttributeValue::S(sk)) => Some((sk.clone(), item)),
                    _ => None,
                })
                .collect();
            let mut rows = Vec::with_capacity(window.len());
            for sk in &window {
                // A row deleted between the two reads is left out.
                if let Some(item) = items.remove(sk) {
                    rows.push(self.record_row(&item).await?);
                }
            }
            Ok(RecordPage { rows, total })
        })
    }

    fn score_matrix(
        &self,
        owner: &UserId,
        run_id: &str,
        score: &str,
    ) -> StoreFuture<'_, Arc<ScoreMatrix>> {
        let (owner, run_id, score) = (owner.clone(), run_id.to_string(), score.to_string());
        Box::pin(async move {
            let index = self.run_index(&owner, &run_id).await?;
            // Rows are only ever added to a run: as many rows means the same rows.
            let n_rows = index.len();
            if let Some(matrix) = self.matrices.get(&owner, &run_id, &score, n_rows) {
                return Ok(matrix);
            }
            let matrix = Arc::new(ScoreMatrix::build(
                index
                    .iter()
                    .map(|entry| MatrixEntry {
                        position: entry.position,
                        index: entry.index,
                        model_order: entry.model_order,
                        cell: if entry.failed {
                            Cell::Failed
                        } else {
                            entry
                                .scores
                                .get(&score)
                                .copied()
                                .filter(|value| value.is_finite())
                                .map_or(Cell::Unscored, Cell::Value)
                        },
                    })
                    .collect(),
            ));
            self.matrices
                .put(&owner, &run_id, &score, n_rows, matrix.clone());
            Ok(matrix)
        })
    }

    fn record_counts(&self, owner: &UserId, run_id: &str) -> StoreFuture<'_, RecordCounts> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            let Some(item) = self
                .get(
                    key(user_pk(&owner), format!("RUN#{run_id}")),
                    "counting records",
                )
                .await?
            else {
                return Ok(RecordCounts::default());
            };
            Ok(RecordCounts {
                ok: self.number(&item, "n_ok", &run_id)?.unwrap_or(0),
                failed: self.number(&item, "n_failed", &run_id)?.unwrap_or(0),
            })
        })
    }

    fn set_record_counts(
        &self,
        owner: &UserId,
        run_id: &str,
        counts: RecordCounts,
    ) -> StoreFuture<'_, ()> {
        let (owner, run_id) = (owner.clone(), run_id.to_string());
        Box::pin(async move {
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("RUN#{run_id}"))))
                .update_expression("SET n_ok = :ok, n_failed = :failed")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":ok", n(counts.ok))
                .expression_attribute_values(":failed", n(counts.failed))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|error| error.is_conditional_check_failed_exception()) =>
                {
                    Err(StoreError::UnknownRun { run_id })
                }
                Err(error) => Err(self.aws("recounting records", error)),
            }
        })
    }

    fn staging_path(&self) -> PathBuf {
        self.uploads_dir.join(format!("{}.part", random_hex(16)))
    }

    fn add_dataset(&self, owner: &UserId, dataset: NewDataset) -> StoreFuture<'_, DatasetRow> {
        let owner = owner.clone();
        Box::pin(async move {
            let id = random_hex(12);
            let format = if dataset.format == "csv" {
                "csv"
            } else {
                "jsonl"
            };
            let io = |path: &Path, what| {
                let path = path.to_path_buf();
                move |source| StoreError::Io { path, what, source }
            };
            let size_bytes = tokio::fs::metadata(&dataset.staged)
                .await
                .map_err(io(&dataset.staged, "reading the upload"))?
                .len();
            let object = Self::dataset_object(&owner, &id, format);
            let body = ByteStream::from_path(&dataset.staged)
                .await
                .map_err(|error| self.aws("uploading the dataset", error))?;
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&object)
                .body(body)
                .send()
                .await
                .map_err(|error| self.aws("uploading the dataset", error))?;
            let file = self.dataset_file(&id, format);
            tokio::fs::rename(&dataset.staged, &file)
                .await
                .map_err(io(&file, "keeping the upload"))?;
            self.bound_dataset_copies(&file).await?;
            let created = now_rfc3339();
            let mut item = key(user_pk(&owner), format!("DS#{id}"));
            item.insert("ckey".into(), s(format!("DS#{created}#{id}")));
            item.insert("created".into(), s(created));
            item.insert("name".into(), s(&dataset.name));
            item.insert("format".into(), s(format));
            item.insert("size_bytes".into(), n(size_bytes));
            item.insert("n_records".into(), n(dataset.n_records));
            item.insert(
                "fields".into(),
                s(serde_json::to_string(&dataset.fields).unwrap_or_default()),
            );
            let row = self.dataset_row(&owner, &item)?;
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|error| self.aws("adding dataset", error))?;
            Ok(row)
        })
    }

    fn datasets(&self, owner: &UserId) -> StoreFuture<'_, Vec<DatasetRow>> {
        let owner = owner.clone();
        Box::pin(async move {
            let mut datasets = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .dynamo
                    .query()
                    .table_name(&self.table)
                    .index_name("by_created")
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk AND begins_with(ckey, :ds)")
                    .expression_attribute_values(":pk", s(user_pk(&owner)))
                    .expression_attribute_values(":ds", s("DS#"))
                    .scan_index_forward(false)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|error| self.aws("listing datasets", error))?;
                let page = out.items.unwrap_or_default();
                self.reads.query_page(&page);
                for item in page {
                    datasets.push(self.dataset_row(&owner, &item)?);
                }
                match out.last_evaluated_key {
                    Some(key) => start = Some(key),
                    None => return Ok(datasets),
                }
            }
        })
    }

    fn dataset(&self, owner: &UserId, dataset_id: &str) -> StoreFuture<'_, Option<DatasetRow>> {
        let (owner, dataset_id) = (owner.clone(), dataset_id.to_string());
        Box::pin(async move {
            let Some(item) = self
                .get(
                    key(user_pk(&owner), format!("DS#{dataset_id}")),
                    "reading dataset",
                )
                .await?
            else {
                return Ok(None);
            };
            let row = self.dataset_row(&owner, &item)?;
            if tokio::fs::try_exists(&row.path).await.unwrap_or(false) {
                // Used now: the bound on the local copies removes it last. A copy removed
                // between the check and this mark is fetched again by the next read.
                let path = row.path.clone();
                let _ =
                    tokio::task::spawn_blocking(move || crate::disk_cache::mark_used(&path)).await;
                return Ok(Some(row));
            }
            // Uploaded through another task: fetch it once into the local copy, staged first
            // so a half-written file is never taken for the dataset.
            let out = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(Self::dataset_object(&owner, &row.id, &row.format))
                .send()
                .await
                .map_err(|error| self.aws("downloading the dataset", error))?;
            let staged = self.staging_path();
            let io = |path: &Path, what| {
                let path = path.to_path_buf();
                move |source| StoreError::Io { path, what, source }
            };
            let mut file = tokio::fs::File::create(&staged)
                .await
                .map_err(io(&staged, "downloading the dataset"))?;
            let mut body = out.body.into_async_read();
            let copied = tokio::io::copy(&mut body, &mut file).await;
            drop(file);
            if let Err(source) = copied {
                let _ = tokio::fs::remove_file(&staged).await;
                return Err(io(&staged, "downloading the dataset")(source));
            }
            tokio::fs::rename(&staged, &row.path)
                .await
                .map_err(io(&row.path, "keeping the downloaded dataset"))?;
            self.bound_dataset_copies(&row.path).await?;
            Ok(Some(row))
        })
    }

    fn delete_dataset(&self, owner: &UserId, dataset_id: &str) -> StoreFuture<'_, bool> {
        let (owner, dataset_id) = (owner.clone(), dataset_id.to_string());
        Box::pin(async move {
            let out = self
                .dynamo
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(user_pk(&owner), format!("DS#{dataset_id}"))))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
                .await
                .map_err(|error| self.aws("deleting dataset", error))?;
            let Some(item) = out.attributes.filter(|item| !item.is_empty()) else {
                return Ok(false);
            };
            let row = self.dataset_row(&owner, &item)?;
            let grants = match item.get("grants") {
                Some(AttributeValue::Ss(grants)) => grants.clone(),
                _ => Vec::new(),
            };
            self.delete_item_extras(&owner, ItemKind::Dataset, &row.id, grants)
                .await?;
            self.delete_objects(
                vec![Self::dataset_object(&owner, &row.id, &row.format)],
                "deleting the dataset file",
            )
            .await?;
            match tokio::fs::remove_file(&row.path).await {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(true),
                Err(source) => Err(StoreError::Io {
                    path: row.path,
                    what: "deleting the dataset file",
                    source,
                }),
            }
        })
    }

    fn settings(&self, owner: &UserId) -> StoreFuture<'_, Option<serde_json::Value>> {
        let owner = owner.clone();
        Box::pin(async move { self.user_document(&owner, SETTINGS).await })
    }

    fn save_settings(&self, owner: &UserId, settings: &serde_json::Value) -> StoreFuture<'_, ()> {
        let (owner, settings) = (owner.clone(), settings.to_string());
        Box::pin(async move { self.put_user_document(&owner, SETTINGS, settings).await })
    }

    fn session(&self, session_id: &str) -> StoreFuture<'_, Option<Session>> {
        let session_id = session_id.to_string();
        Box::pin(async move {
            let Some(item) = self
                .get(session_item_key(&session_id), "reading session")
                .await?
            else {
                return Ok(None);
            };
            let expires_unix: i64 = self.number(&item, "expires", "session")?.unwrap_or(0);
            if expires_unix <= unix_now() {
                return Ok(None);
            }
            let user = self.opt_text(&item, "user_id").map(|id| SessionUser {
                name: self.opt_text(&item, "user_name").unwrap_or(id).to_string(),
                id: UserId::new(id),
            });
            Ok(Some(Session {
                csrf_token: self.text(&item, "csrf_token", "session")?.to_string(),
                user,
                auth_data: self.opt_text(&item, "auth_data").map(str::to_string),
                expires_unix,
                id: session_id,
            }))
        })
    }

    fn save_session(&self, session: &Session) -> StoreFuture<'_, ()> {
        let session = session.clone();
        Box::pin(async move {
            let mut item = session_item_key(&session.id);
            item.insert("csrf_token".into(), s(&session.csrf_token));
            if let Some(user) = &session.user {
                item.insert("user_id".into(), s(user.id.as_str()));
                item.insert("user_name".into(), s(&user.name));
            }
            if let Some(auth_data) = &session.auth_data {
                item.insert("auth_data".into(), s(auth_data));
            }
            item.insert("expires".into(), n(session.expires_unix));
            // The table's time-to-live attribute: DynamoDB removes expired sessions itself too.
            item.insert("ttl".into(), n(session.expires_unix.max(0)));
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|error| self.aws("saving session", error))?;
            Ok(())
        })
    }

    fn delete_session(&self, session_id: &str) -> StoreFuture<'_, ()> {
        let item_key = session_item_key(session_id);
        Box::pin(async move {
            self.dynamo
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(item_key))
                .send()
                .await
                .map_err(|error| self.aws("deleting session", error))?;
            Ok(())
        })
    }

    /// Every session partition (and the old single one) page by page: each page's expired keys
    /// are deleted before the next page is read, so memory holds at most one page (1 MB of
    /// keys), however many sessions expired.
    fn purge_sessions(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let partitions = std::iter::once(SESSIONS_PK.to_string())
                .chain((0..SESSION_SHARDS).map(|shard| format!("{SESSIONS_PK}#{shard:x}")));
            let mut count = 0;
            for partition in partitions {
                let mut start: Option<Item> = None;
                loop {
                    let out = self
                        .dynamo
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk")
                        .filter_expression("expires <= :now")
                        .projection_expression("pk, #sk")
                        .expression_attribute_names("#sk", "sk")
                        .expression_attribute_values(":pk", s(&partition))
                        .expression_attribute_values(":now", n(unix_now()))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|error| self.aws("purging sessions", error))?;
                    let expired = out.items.unwrap_or_default();
                    count += expired.len();
                    self.batch_delete(expired, "purging sessions").await?;
                    match out.last_evaluated_key {
                        Some(key) => start = Some(key),
                        None => break,
                    }
                }
            }
            Ok(count)
        })
    }

    fn remember_user(&self, user: &KnownUser) -> StoreFuture<'_, ()> {
        let user = user.clone();
        Box::pin(async move {
            let mut item = key("USERS", user.id.as_str());
            item.insert("name".into(), s(&user.name));
            item.insert("seen".into(), s(now_rfc3339()));
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|error| self.aws("remembering a user", error))?;
            Ok(())
        })
    }

    fn known_users(&self, limit: usize) -> StoreFuture<'_, Vec<KnownUser>> {
        let limit = limit.min(MAX_USERS_LISTED);
        Box::pin(async move {
            let items = self
                .query_partition("USERS", None, None, limit, "listing users")
                .await?;
            let mut users = items
                .iter()
                .map(|item| {
                    let id = self.text(item, "sk", "user")?;
                    Ok(KnownUser {
                        id: UserId::new(id),
                        name: self.text(item, "name", id)?.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            users.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
            Ok(users)
        })
    }

    fn share(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grantee: &Grantee,
    ) -> StoreFuture<'_, Result<(), Refusal>> {
        let (owner, item_id, grantee) = (
            owner.clone(),
            item_id.to_string(),
            grantee.as_stored().to_string(),
        );
        Box::pin(async move {
            // The key holds the owner: only the owner's own item takes a grant.
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key(&owner, kind, &item_id)))
                .update_expression("ADD grants :grant")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(grants) OR size(grants) < :max OR contains(grants, :grantee))",
                )
                .expression_attribute_values(":grant", AttributeValue::Ss(vec![grantee.clone()]))
                .expression_attribute_values(":grantee", s(&grantee))
                .expression_attribute_values(":max", n(MAX_GRANTS_PER_ITEM))
                .send()
                .await;
            if !self.conditional_update("sharing", result)? {
                return Ok(
                    match self.item_grants(&owner, kind, &item_id, "sharing").await? {
                        None => Err(Refusal::NotFound),
                        Some(_) => Err(Refusal::Full),
                    },
                );
            }
            let mut pointer = shared_key(&grantee, kind, &item_id);
            pointer.insert("owner".into(), s(owner.as_str()));
            pointer.insert("created".into(), s(now_rfc3339()));
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(pointer))
                .send()
                .await
                .map_err(|error| self.aws("sharing", error))?;
            Ok(Ok(()))
        })
    }

    fn unshare(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        grantee: &Grantee,
    ) -> StoreFuture<'_, bool> {
        let (owner, item_id, grantee) = (
            owner.clone(),
            item_id.to_string(),
            grantee.as_stored().to_string(),
        );
        Box::pin(async move {
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key(&owner, kind, &item_id)))
                .update_expression("DELETE grants :grant")
                .condition_expression("attribute_exists(pk) AND contains(grants, :grantee)")
                .expression_attribute_values(":grant", AttributeValue::Ss(vec![grantee.clone()]))
                .expression_attribute_values(":grantee", s(&grantee))
                .send()
                .await;
            let removed = self.conditional_update("unsharing", result)?;
            if removed {
                self.dynamo
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(shared_key(&grantee, kind, &item_id)))
                    .send()
                    .await
                    .map_err(|error| self.aws("unsharing", error))?;
            }
            Ok(removed)
        })
    }

    fn grants(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, Vec<Grantee>> {
        let (owner, item_id) = (owner.clone(), item_id.to_string());
        Box::pin(async move {
            let mut grants = self
                .item_grants(&owner, kind, &item_id, "reading grants")
                .await?
                .unwrap_or_default();
            grants.sort();
            Ok(grants
                .iter()
                .map(|text| Grantee::from_stored(text))
                .collect())
        })
    }

    fn can_read(
        &self,
        viewer: &UserId,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, bool> {
        let (viewer, owner, item_id) = (viewer.clone(), owner.clone(), item_id.to_string());
        Box::pin(async move {
            let Some(grants) = self
                .item_grants(&owner, kind, &item_id, "checking a grant")
                .await?
            else {
                return Ok(false);
            };
            Ok(viewer == owner
                || grants
                    .iter()
                    .any(|grantee| grantee == EVERYONE || grantee == viewer.as_str()))
        })
    }

    fn shared_with(&self, viewer: &UserId, limit: usize) -> StoreFuture<'_, Vec<SharedItem>> {
        let viewer = viewer.clone();
        let limit = limit.min(MAX_SHARED_LISTED);
        Box::pin(async move {
            let mut pointers = Vec::new();
            for grantee in [viewer.as_str(), EVERYONE] {
                for item in self
                    .query_partition(
                        &format!("SHARED#{grantee}"),
                        None,
                        None,
                        MAX_SHARED_LISTED,
                        "listing shared items",
                    )
                    .await?
                {
                    let sk = self.text(&item, "sk", "shared item")?;
                    let Some((kind, id)) = sk.split_once('#') else {
                        continue;
                    };
                    let Some(kind) = ItemKind::parse(kind) else {
                        continue;
                    };
                    let owner = UserId::new(self.text(&item, "owner", sk)?);
                    let created = self.text(&item, "created", sk)?.to_string();
                    if owner == viewer {
                        continue;
                    }
                    pointers.push((
                        created,
                        SharedItem {
                            kind,
                            owner,
                            id: id.to_string(),
                            grantee: Grantee::from_stored(grantee),
                        },
                    ));
                }
            }
            pointers.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
            // The item's own grants decide: a pointer left behind by a deleted item or a
            // half-done unshare lists nothing.
            let keys: Vec<Item> = pointers
                .iter()
                .map(|(_, shared)| item_key(&shared.owner, shared.kind, &shared.id))
                .collect::<Vec<_>>();
            let mut live: HashMap<(String, String), Vec<String>> = HashMap::new();
            for mut item in self
                .batch_get(dedup_keys(keys.clone()), "listing shared items")
                .await?
            {
                let grants = match item.remove("grants") {
                    Some(AttributeValue::Ss(grants)) => grants,
                    _ => Vec::new(),
                };
                live.insert(
                    (
                        self.text(&item, "pk", "shared item")?.to_string(),
                        self.text(&item, "sk", "shared item")?.to_string(),
                    ),
                    grants,
                );
            }
            let mut items: Vec<SharedItem> = Vec::new();
            for ((_, shared), key) in pointers.into_iter().zip(keys) {
                let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                    (key.get("pk"), key.get("sk"))
                else {
                    continue;
                };
                let granted = live
                    .get(&(pk.clone(), sk.clone()))
                    .is_some_and(|grants| grants.iter().any(|g| g == shared.grantee.as_stored()));
                if !granted
                    || items
                        .iter()
                        .any(|item| item.kind == shared.kind && item.id == shared.id)
                {
                    continue;
                }
                items.push(shared);
                if items.len() == limit {
                    break;
                }
            }
            Ok(items)
        })
    }

    fn user_quotas(&self, user: &UserId) -> StoreFuture<'_, Option<serde_json::Value>> {
        let user = user.clone();
        Box::pin(async move { self.user_document(&user, QUOTAS).await })
    }

    fn set_user_quotas(&self, user: &UserId, quotas: &serde_json::Value) -> StoreFuture<'_, ()> {
        let (user, quotas) = (user.clone(), quotas.to_string());
        Box::pin(async move { self.put_user_document(&user, QUOTAS, quotas).await })
    }

    fn add_audit(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
        actor: &KnownUser,
        action: &str,
    ) -> StoreFuture<'_, ()> {
        let (owner, item_id, actor, action) = (
            owner.clone(),
            item_id.to_string(),
            actor.clone(),
            action.to_string(),
        );
        Box::pin(async move {
            let at = now_rfc3339();
            // Time to the nanosecond, then randomness: entries of one millisecond keep their
            // order, and two tasks never write the same key.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            let mut item = key(
                audit_pk(&owner, kind, &item_id),
                format!("{at}#{nanos:020}#{}", random_hex(4)),
            );
            item.insert("at".into(), s(at));
            item.insert("actor".into(), s(actor.id.as_str()));
            item.insert("actor_name".into(), s(&actor.name));
            item.insert("action".into(), s(action));
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|error| self.aws("recording an audit entry", error))?;
            Ok(())
        })
    }

    fn audit(
        &self,
        owner: &UserId,
        kind: ItemKind,
        item_id: &str,
    ) -> StoreFuture<'_, Vec<AuditEntry>> {
        let (owner, item_id) = (owner.clone(), item_id.to_string());
        Box::pin(async move {
            let out = self
                .dynamo
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(audit_pk(&owner, kind, &item_id)))
                .scan_index_forward(false)
                .limit(MAX_AUDIT_SHOWN as i32)
                .send()
                .await
                .map_err(|error| self.aws("reading the audit", error))?;
            self.reads
                .query_page(out.items.as_deref().unwrap_or_default());
            out.items
                .unwrap_or_default()
                .iter()
                .map(|item| {
                    Ok(AuditEntry {
                        actor: UserId::new(self.text(item, "actor", &item_id)?),
                        actor_name: self.text(item, "actor_name", &item_id)?.to_string(),
                        action: self.text(item, "action", &item_id)?.to_string(),
                        at: self.text(item, "at", &item_id)?.to_string(),
                    })
                })
                .collect()
        })
    }

    fn create_challenge(
        &self,
        owner: &UserId,
        spec: &ChallengeSpec,
    ) -> StoreFuture<'_, Result<ChallengeRow, Refusal>> {
        let (owner, spec) = (owner.clone(), spec.clone());
        Box::pin(async move {
            if let Err(message) = spec.check() {
                return Err(StoreError::Config { message });
            }
            let n_open = self
                .challenges()
                .await?
                .iter()
                .filter(|challenge| challenge.open)
                .count();
            if n_open >= MAX_OPEN_CHALLENGES {
                return Ok(Err(Refusal::Full));
            }
            let id = random_hex(8);
            let created = now_rfc3339();
            let mut item = challenge_key(&id);
            item.insert("ckey".into(), s(format!("CH#{created}#{id}")));
            item.insert("owner".into(), s(owner.as_str()));
            item.insert("created".into(), s(&created));
            item.insert("open".into(), AttributeValue::Bool(true));
            item.insert(
                "spec".into(),
                s(serde_json::to_string(&spec).unwrap_or_default()),
            );
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|error| self.aws("publishing a challenge", error))?;
            Ok(Ok(ChallengeRow {
                id,
                owner,
                created,
                open: true,
                spec,
            }))
        })
    }

    fn challenges(&self) -> StoreFuture<'_, Vec<ChallengeRow>> {
        Box::pin(async move {
            let out = self
                .dynamo
                .query()
                .table_name(&self.table)
                .index_name("by_created")
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(ckey, :ch)")
                .expression_attribute_values(":pk", s(CHALLENGES_PK))
                .expression_attribute_values(":ch", s("CH#"))
                .scan_index_forward(false)
                .limit(MAX_CHALLENGES as i32)
                .send()
                .await
                .map_err(|error| self.aws("listing challenges", error))?;
            out.items
                .unwrap_or_default()
                .iter()
                .map(|item| self.challenge_row(item))
                .collect()
        })
    }

    fn challenge(&self, challenge_id: &str) -> StoreFuture<'_, Option<ChallengeRow>> {
        let challenge_id = challenge_id.to_string();
        Box::pin(async move {
            self.get(challenge_key(&challenge_id), "reading challenge")
                .await?
                .map(|item| self.challenge_row(&item))
                .transpose()
        })
    }

    fn close_challenge(&self, owner: &UserId, challenge_id: &str) -> StoreFuture<'_, bool> {
        let (owner, challenge_id) = (owner.clone(), challenge_id.to_string());
        Box::pin(async move {
            let result = self
                .dynamo
                .update_item()
                .table_name(&self.table)
                .set_key(Some(challenge_key(&challenge_id)))
                .update_expression("SET #open = :closed")
                .condition_expression("attribute_exists(pk) AND #owner = :owner AND #open = :open")
                .expression_attribute_names("#open", "open")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":closed", AttributeValue::Bool(false))
                .expression_attribute_values(":open", AttributeValue::Bool(true))
                .expression_attribute_values(":owner", s(owner.as_str()))
                .send()
                .await;
            self.conditional_update("closing a challenge", result)
        })
    }

    fn submit_run(
        &self,
        challenge_id: &str,
        participant: &UserId,
        run_id: &str,
    ) -> StoreFuture<'_, Result<(), Refusal>> {
        let (challenge_id, participant, run_id) = (
            challenge_id.to_string(),
            participant.clone(),
            run_id.to_string(),
        );
        Box::pin(async move {
            let Some(challenge) = self.challenge(&challenge_id).await? else {
                return Ok(Err(Refusal::NotFound));
            };
            if !challenge.open {
                return Ok(Err(Refusal::Closed));
            }
            if self
                .item_grants(&participant, ItemKind::Run, &run_id, "submitting a run")
                .await?
                .is_none()
            {
                return Ok(Err(Refusal::NotFound));
            }
            let pk = submissions_pk(&challenge_id);
            let submitted = self
                .query_partition(
                    &pk,
                    None,
                    Some("pk, #sk"),
                    MAX_SUBMISSIONS,
                    "submitting a run",
                )
                .await?;
            let sk = format!("RUN#{run_id}");
            if submitted
                .iter()
                .any(|item| matches!(item.get("sk"), Some(AttributeValue::S(text)) if *text == sk))
            {
                return Ok(Ok(()));
            }
            if submitted.len() >= MAX_SUBMISSIONS {
                return Ok(Err(Refusal::Full));
            }
            let mut item = key(pk, sk);
            item.insert("participant".into(), s(participant.as_str()));
            item.insert("submitted".into(), s(now_rfc3339()));
            self.dynamo
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|error| self.aws("submitting a run", error))?;
            Ok(Ok(()))
        })
    }

    fn submissions(&self, challenge_id: &str) -> StoreFuture<'_, Vec<Submission>> {
        let challenge_id = challenge_id.to_string();
        Box::pin(async move {
            let items = self
                .query_partition(
                    &submissions_pk(&challenge_id),
                    None,
                    None,
                    MAX_SUBMISSIONS,
                    "listing submissions",
                )
                .await?;
            let mut submissions = items
                .iter()
                .map(|item| {
                    let sk = self.text(item, "sk", "submission")?;
                    Ok(Submission {
                        participant: UserId::new(self.text(item, "participant", sk)?),
                        run_id: sk.trim_start_matches("RUN#").to_string(),
                        submitted: self.text(item, "submitted", sk)?.to_string(),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            submissions.sort_by(|a, b| {
                a.submitted
                    .cmp(&b.submitted)
                    .then_with(|| a.run_id.cmp(&b.run_id))
            });
            Ok(submissions)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{all_records, suite};

    async fn config_for(url: &str) -> aws_config::SdkConfig {
        sdk_loader()
            .endpoint_url(url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await
    }

    /// A store on a fresh table and bucket of a moto server of its own.
    async fn moto_store() -> (model_doubles::Moto, tempfile::TempDir, DynamoStore) {
        let moto = model_doubles::Moto::start().await;
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(moto.url()).await;
        let store = DynamoStore::new(
            &config,
            DynamoConfig {
                table: "llm-eval".into(),
                bucket: "data".into(),
                local_dir: dir.path().to_path_buf(),
            },
        )
        .unwrap();
        store.create_table().await.unwrap();
        store
            .s3
            .create_bucket()
            .bucket("data")
            .send()
            .await
            .unwrap();
        (moto, dir, store)
    }

    #[tokio::test]
    async fn dynamo_runs_and_records_round_trip_in_export_order() {
        let (_moto, _dir, store) = moto_store().await;
        suite::runs_and_records_round_trip_in_export_order(&store).await;
    }

    #[tokio::test]
    async fn dynamo_a_record_cannot_be_stored_twice() {
        let (_moto, _dir, store) = moto_store().await;
        suite::a_record_cannot_be_stored_twice(&store).await;
        // The call's new row is stored and counted; the duplicate is refused and names itself.
        let error = store
            .insert_records(
                &suite::alice(),
                "r",
                vec![
                    suite::record("m", 5, 1.0, None),
                    suite::record("m", 0, 1.0, None),
                ],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::DuplicateRecord { position: 0, model, .. } if model == "m"),
            "{error}"
        );
        assert_eq!(
            store.record_counts(&suite::alice(), "r").await.unwrap().ok,
            3
        );
        assert_eq!(
            all_records(&store, &suite::alice(), "r")
                .await
                .unwrap()
                .len(),
            3
        );
        // A resumed run recounts from the rows.
        store
            .set_record_counts(&suite::alice(), "r", RecordCounts { ok: 7, failed: 1 })
            .await
            .unwrap();
        assert_eq!(
            store.record_counts(&suite::alice(), "r").await.unwrap(),
            RecordCounts { ok: 7, failed: 1 }
        );
    }

    #[tokio::test]
    async fn dynamo_one_owner_never_sees_or_changes_another_owners_rows() {
        let (_moto, dir, store) = moto_store().await;
        let path = suite::one_owner_never_sees_or_changes_another_owners_rows(&store).await;
        assert!(path.starts_with(dir.path().join("datasets")), "{path:?}");
    }

    #[tokio::test]
    async fn dynamo_grants_let_their_grantees_read_and_only_the_owner_change() {
        let (_moto, _dir, store) = moto_store().await;
        suite::grants_let_their_grantees_read_and_only_the_owner_change(&store).await;
    }

    #[tokio::test]
    async fn dynamo_users_quotas_and_audit_are_stored() {
        let (_moto, _dir, store) = moto_store().await;
        suite::users_quotas_and_audit_are_stored(&store).await;
    }

    #[tokio::test]
    async fn dynamo_challenges_take_participants_runs_until_closed() {
        let (_moto, _dir, store) = moto_store().await;
        suite::challenges_take_participants_runs_until_closed(&store).await;
    }

    #[tokio::test]
    async fn dynamo_record_queries_filter_sort_and_page() {
        let (_moto, _dir, store) = moto_store().await;
        suite::record_queries_filter_sort_and_page(&store).await;
    }

    #[tokio::test]
    async fn dynamo_sorted_pages_follow_their_keys_forwards_and_backwards() {
        let (_moto, _dir, store) = moto_store().await;
        suite::sorted_pages_follow_their_keys_forwards_and_backwards(&store).await;
    }

    #[tokio::test]
    async fn dynamo_the_side_view_filters_and_sorts_records_by_a_score_difference() {
        let (_moto, _dir, store) = moto_store().await;
        suite::the_side_view_filters_and_sorts_records_by_a_score_difference(&store).await;
    }

    #[tokio::test]
    async fn sorted_pages_read_the_score_index_not_every_record_item() {
        let (_moto, _dir, store) = moto_store().await;
        let owner = suite::alice();
        store
            .create_run(&owner, "big", &serde_json::json!({}), 600)
            .await
            .unwrap();
        let rows: Vec<RecordRow> = (0..600)
            .map(|position| suite::record("m", position, (position % 7) as f64 / 7.0, None))
            .collect();
        store.insert_records(&owner, "big", rows).await.unwrap();
        let query = RecordQuery {
            model: None,
            variant: None,
            filter: RecordFilter::All,
            sort: RecordSort::Score("f1_score".into()),
            descending: true,
            start: PageStart::First,
            limit: 50,
        };
        let before = store.dynamo_requests();
        let reads_before = store.dynamo_reads();
        let page = store.query_records(&owner, "big", &query).await.unwrap();
        let requests = store.dynamo_requests() - before;
        let reads = store.dynamo_reads();
        // The run item, the run's one index chunk and the page's 50 rows (a unit each: every
        // row is under 4 KB), never the other 550 record items.
        assert_eq!(reads.items - reads_before.items, 52);
        let index_units = reads.units - reads_before.units - 51;
        assert!((1..=10).contains(&index_units), "{reads:?}");
        assert!(reads.bytes - reads_before.bytes > 50 * 100, "{reads:?}");
        assert_eq!(page.total, 600);
        assert_eq!(
            page.rows
                .iter()
                .map(|row| row.position)
                .take(3)
                .collect::<Vec<_>>(),
            [6, 13, 20]
        );
        // The run, one query of its index, one batch read of the page's rows.
        assert_eq!(requests, 3);
        // Rows stored without their index (before it existed): the same page, read from the
        // record items.
        let index = store
            .query_partition(
                &index_pk(&owner, "big"),
                None,
                Some("pk, #sk"),
                1000,
                "test",
            )
            .await
            .unwrap();
        assert!(!index.is_empty());
        store.batch_delete(index, "test").await.unwrap();
        assert_eq!(
            store.query_records(&owner, "big", &query).await.unwrap(),
            page
        );
        let matrix = store.score_matrix(&owner, "big", "f1_score").await.unwrap();
        assert_eq!(matrix.positions.len(), 600);
        assert_eq!(matrix.indexes[7], 14);
    }

    #[tokio::test]
    async fn dynamo_running_runs_are_marked_interrupted() {
        let (_moto, _dir, store) = moto_store().await;
        suite::running_runs_are_marked_interrupted(&store).await;
    }

    #[tokio::test]
    async fn dynamo_runs_are_listed_newest_first_and_large_inserts_chunk() {
        let (_moto, _dir, store) = moto_store().await;
        suite::runs_are_listed_newest_first_and_large_inserts_chunk(&store).await;
    }

    #[tokio::test]
    async fn dynamo_run_leases_are_exclusive_renewable_and_expire() {
        let (_moto, _dir, store) = moto_store().await;
        suite::run_leases_are_exclusive_renewable_and_expire(&store).await;
    }

    #[tokio::test]
    async fn dynamo_cancel_requests_are_recorded_for_running_runs_of_their_owner() {
        let (_moto, _dir, store) = moto_store().await;
        suite::cancel_requests_are_recorded_for_running_runs_of_their_owner(&store).await;
    }

    #[tokio::test]
    async fn dynamo_runs_are_named_and_annotated_by_their_owner() {
        let (_moto, _dir, store) = moto_store().await;
        suite::runs_are_named_and_annotated_by_their_owner(&store).await;
    }

    #[tokio::test]
    async fn dynamo_sessions_are_stored_by_hash_and_expire() {
        let (_moto, _dir, store) = moto_store().await;
        let session = suite::sessions_round_trip_and_expire(&store).await;
        let partition = session_pk(&session_key(&session.id));
        let items = store
            .query_partition(&partition, None, None, 100, "test")
            .await
            .unwrap();
        assert!(!items.is_empty());
        assert!(!format!("{items:?}").contains(&session.id));
    }

    #[tokio::test]
    async fn dynamo_sessions_spread_over_partitions_and_purge_page_by_page() {
        let (_moto, _dir, store) = moto_store().await;
        // Expired sessions in many partitions, and one in the old single partition.
        let mut partitions = std::collections::HashSet::new();
        for _ in 0..60 {
            let session = Session {
                id: crate::sqlite::random_hex(32),
                csrf_token: crate::sqlite::random_hex(32),
                user: None,
                auth_data: None,
                expires_unix: unix_now() - 10,
            };
            partitions.insert(session_pk(&session_key(&session.id)));
            store.save_session(&session).await.unwrap();
        }
        assert!(partitions.len() > 8, "{partitions:?}");
        let mut legacy = key(SESSIONS_PK, "old");
        legacy.insert("expires".into(), n(unix_now() - 10));
        legacy.insert("csrf_token".into(), s("x"));
        store
            .dynamo
            .put_item()
            .table_name(&store.table)
            .set_item(Some(legacy))
            .send()
            .await
            .unwrap();
        let live = Session {
            id: crate::sqlite::random_hex(32),
            csrf_token: crate::sqlite::random_hex(32),
            user: None,
            auth_data: None,
            expires_unix: unix_now() + 600,
        };
        store.save_session(&live).await.unwrap();
        assert_eq!(store.purge_sessions().await.unwrap(), 61);
        assert_eq!(store.purge_sessions().await.unwrap(), 0);
        assert_eq!(store.session(&live.id).await.unwrap(), Some(live));
    }

    #[tokio::test]
    async fn oversized_records_spill_to_s3_and_read_back() {
        let (_moto, _dir, store) = moto_store().await;
        let alice = suite::alice();
        store
            .create_run(&alice, "big", &serde_json::json!({}), 2)
            .await
            .unwrap();
        let mut big = suite::record("m", 0, 1.0, None);
        big.model_output = Some("é".repeat(300 * 1024));
        big.prompt = "p".repeat(200 * 1024);
        let small = suite::record("m", 1, 0.5, None);
        store
            .insert_records(&alice, "big", vec![big.clone(), small.clone()])
            .await
            .unwrap();
        assert_eq!(
            all_records(&store, &alice, "big").await.unwrap(),
            vec![big.clone(), small]
        );
        let objects = store
            .s3
            .list_objects_v2()
            .bucket("data")
            .prefix("records/")
            .send()
            .await
            .unwrap();
        assert_eq!(objects.contents().len(), 1);
        // A second copy is refused and leaves no object behind.
        assert!(
            store
                .insert_records(&alice, "big", vec![big.clone()])
                .await
                .is_err()
        );
        let page = store
            .query_records(
                &alice,
                "big",
                &RecordQuery {
                    model: None,
                    variant: None,
                    filter: RecordFilter::All,
                    sort: RecordSort::Score("f1_score".into()),
                    descending: true,
                    start: PageStart::First,
                    limit: 1,
                },
            )
            .await
            .unwrap();
        assert_eq!((page.rows, page.total), (vec![big], 2));
        assert!(store.delete_run(&alice, "big").await.unwrap());
        let objects = store
            .s3
            .list_objects_v2()
            .bucket("data")
            .prefix("records/")
            .send()
            .await
            .unwrap();
        assert!(objects.contents().is_empty());
    }

    #[tokio::test]
    async fn a_dataset_uploaded_through_another_task_is_downloaded_once() {
        let (moto, dir, store) = moto_store().await;
        let staged = store.staging_path();
        std::fs::write(&staged, "{\"q\": 1}\n").unwrap();
        let dataset = store
            .add_dataset(
                &suite::alice(),
                NewDataset {
                    name: "d.jsonl".into(),
                    format: "jsonl".into(),
                    n_records: 1,
                    fields: vec!["q".into()],
                    staged,
                },
            )
            .await
            .unwrap();
        // Another task: the same table and bucket, its own local directory.
        let other_dir = tempfile::tempdir().unwrap();
        let other = DynamoStore::new(
            &config_for(moto.url()).await,
            DynamoConfig {
                table: "llm-eval".into(),
                bucket: "data".into(),
                local_dir: other_dir.path().to_path_buf(),
            },
        )
        .unwrap();
        let seen = other
            .dataset(&suite::alice(), &dataset.id)
            .await
            .unwrap()
            .unwrap();
        assert!(seen.path.starts_with(other_dir.path()));
        assert_eq!(std::fs::read_to_string(&seen.path).unwrap(), "{\"q\": 1}\n");
        assert_eq!(other.datasets(&suite::alice()).await.unwrap().len(), 1);
        assert!(dataset.path.starts_with(dir.path()));
    }

    #[tokio::test]
    async fn a_task_keeps_its_dataset_copies_within_the_bound() {
        let (moto, _dir, store) = moto_store().await;
        // Four datasets of 1,000 bytes each, uploaded through the first task.
        let mut ids = Vec::new();
        for n in 0..4 {
            let staged = store.staging_path();
            let line = format!("{{\"q\": \"{n}{}\"}}\n", "x".repeat(989));
            std::fs::write(&staged, &line).unwrap();
            assert_eq!(line.len(), 1_000);
            let dataset = store
                .add_dataset(
                    &suite::alice(),
                    NewDataset {
                        name: format!("d{n}.jsonl"),
                        format: "jsonl".into(),
                        n_records: 1,
                        fields: vec!["q".into()],
                        staged,
                    },
                )
                .await
                .unwrap();
            ids.push(dataset.id);
        }
        // A second task that may keep 2,500 bytes: reading all four keeps the two read last.
        let other_dir = tempfile::tempdir().unwrap();
        let other = DynamoStore::new(
            &config_for(moto.url()).await,
            DynamoConfig {
                table: "llm-eval".into(),
                bucket: "data".into(),
                local_dir: other_dir.path().to_path_buf(),
            },
        )
        .unwrap()
        .with_dataset_cache_limit(2_500);
        let local = |id: &str| {
            other_dir
                .path()
                .join("datasets")
                .join(format!("{id}.jsonl"))
        };
        let copies = || {
            std::fs::read_dir(other_dir.path().join("datasets"))
                .unwrap()
                .map(|entry| entry.unwrap().metadata().unwrap().len())
                .collect::<Vec<_>>()
        };
        for id in &ids {
            let seen = other.dataset(&suite::alice(), id).await.unwrap().unwrap();
            assert!(
                std::fs::read_to_string(&seen.path)
                    .unwrap()
                    .ends_with("x\"}\n")
            );
            assert!(copies().iter().sum::<u64>() <= 2_500, "{:?}", copies());
        }
        assert_eq!(copies().len(), 2);
        assert!(!local(&ids[0]).exists() && !local(&ids[1]).exists());
        // Reading the third again marks it used, so fetching the first back removes the fourth.
        tokio::time::sleep(Duration::from_millis(20)).await;
        other.dataset(&suite::alice(), &ids[2]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let again = other
            .dataset(&suite::alice(), &ids[0])
            .await
            .unwrap()
            .unwrap();
        assert!(
            std::fs::read_to_string(&again.path)
                .unwrap()
                .starts_with("{\"q\": \"0")
        );
        assert!(local(&ids[2]).exists() && local(&ids[0]).exists());
        assert!(!local(&ids[3]).exists());
    }

    /// Scripted (status, body) answers per operation, in order.
    type Answers = HashMap<String, VecDeque<(u16, String)>>;

    /// An answer that refuses a put with the item it was sent (the put had landed).
    const ECHO_ITEM: &str = "echo the item";

    /// A scripted DynamoDB double: moto always processes every item of a batch, never
    /// throttles and never loses an answer, so the answers of those cases are played from a
    /// script here, one list per operation (`X-Amz-Target`), each answer used once; every
    /// request is logged.
    #[derive(Clone, Default)]
    struct Script {
        answers: Arc<Mutex<Answers>>,
        log: Arc<Mutex<Vec<(String, String)>>>,
    }

    impl Script {
        fn answer(&self, operation: &str, status: u16, body: serde_json::Value) {
            self.answers
                .lock()
                .unwrap()
                .entry(operation.to_string())
                .or_default()
                .push_back((status, body.to_string()));
        }

        fn calls(&self, operation: &str) -> Vec<serde_json::Value> {
            self.log
                .lock()
                .unwrap()
                .iter()
                .filter(|(op, _)| op == operation)
                .map(|(_, body)| serde_json::from_str(body).unwrap())
                .collect()
        }

        async fn serve(&self) -> String {
            use axum::http::{HeaderMap, StatusCode};
            let script = self.clone();
            let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
                let script = script.clone();
                async move {
                    let operation = headers
                        .get("x-amz-target")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.split('.').nth(1))
                        .unwrap_or_default()
                        .to_string();
                    script.log.lock().unwrap().push((operation.clone(), body.clone()));
                    let mut answer = script
                        .answers
                        .lock()
                        .unwrap()
                        .get_mut(&operation)
                        .and_then(VecDeque::pop_front);
                    if let Some((_, text)) = &mut answer
                        && text.trim_matches('"') == ECHO_ITEM
                    {
                        let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
                        *text = serde_json::json!({
                            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                            "message": "The conditional request failed",
                            "Item": sent["Item"],
                        })
                        .to_string();
                    }
                    let (status, body) = answer.unwrap_or((
                        400,
                        format!(r#"{{"__type":"com.amazon.coral.validate#ValidationException","message":"unscripted {operation}"}}"#),
                    ));
                    (
                        StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/x-amz-json-1.0")],
                        body,
                    )
                }
            });
            // 127.0.0.2: a port picked here can never be the one a moto server of another
            // test is about to bind on 127.0.0.1.
            let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        }
    }

    async fn scripted_store(script: &Script) -> (tempfile::TempDir, DynamoStore) {
        let url = script.serve().await;
        let dir = tempfile::tempdir().unwrap();
        let store = DynamoStore::new(
            &config_for(&url).await,
            DynamoConfig {
                table: "t".into(),
                bucket: "b".into(),
                local_dir: dir.path().to_path_buf(),
            },
        )
        .unwrap();
        (dir, store)
    }

    fn throttled() -> serde_json::Value {
        serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded."
        })
    }

    #[tokio::test]
    async fn throttled_record_writes_back_off_and_a_retried_put_lands_once() {
        let script = Script::default();
        script.answer(
            "GetItem",
            200,
            serde_json::json!({"Item": {"pk": {"S": "U#alice"}, "sk": {"S": "RUN#r"}}}),
        );
        script.answer("PutItem", 400, throttled());
        script.answer("PutItem", 400, throttled());
        // The put landed but its answer was lost: the retry finds the very item it wrote.
        script.answer(
            "PutItem",
            500,
            serde_json::json!({"__type": "InternalServerError", "message": "lost"}),
        );
        script.answer("PutItem", 400, serde_json::json!(ECHO_ITEM));
        script.answer("BatchWriteItem", 200, serde_json::json!({}));
        script.answer("UpdateItem", 200, serde_json::json!({}));
        let (_dir, store) = scripted_store(&script).await;
        store
            .insert_records(&suite::alice(), "r", vec![suite::record("m", 0, 1.0, None)])
            .await
            .unwrap();
        let puts = script.calls("PutItem");
        assert_eq!(puts.len(), 4);
        assert_eq!(puts[0]["ConditionExpression"], "attribute_not_exists(pk)");
        assert_eq!(puts[0]["ReturnValuesOnConditionCheckFailure"], "ALL_OLD");
        assert!(puts.iter().all(|put| put["Item"] == puts[0]["Item"]));
        // Counted once.
        let updates = script.calls("UpdateItem");
        assert_eq!(updates.len(), 1);
        assert_eq!(
            updates[0]["ExpressionAttributeValues"][":ok"],
            serde_json::json!({"N": "1"})
        );
        // Indexed once, before it is counted.
        let index = script.calls("BatchWriteItem");
        assert_eq!(index.len(), 1);
        let put = &index[0]["RequestItems"]["t"][0]["PutRequest"]["Item"];
        assert_eq!(put["pk"], serde_json::json!({"S": "U#alice#X#r"}));
        assert!(
            put["cells"]["S"]
                .as_str()
                .unwrap()
                .contains("\"f1_score\":1.0"),
            "{put}"
        );
        assert_eq!(store.dynamo_requests(), 7, "every attempt is counted");
    }

    #[tokio::test]
    async fn a_different_stored_item_is_a_duplicate() {
        let script = Script::default();
        script.answer(
            "GetItem",
            200,
            serde_json::json!({"Item": {"pk": {"S": "U#alice"}, "sk": {"S": "RUN#r"}}}),
        );
        script.answer(
            "PutItem",
            400,
            serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
                "message": "The conditional request failed",
                "Item": {"pk": {"S": "U#alice#R#r"}, "sk": {"S": record_sk(0, 0)}, "body": {"S": "{}"}}
            }),
        );
        let (_dir, store) = scripted_store(&script).await;
        let error = store
            .insert_records(&suite::alice(), "r", vec![suite::record("m", 0, 1.0, None)])
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::DuplicateRecord { position: 0, .. }),
            "{error}"
        );
        assert!(
            script.calls("UpdateItem").is_empty(),
            "nothing stored, nothing counted"
        );
    }

    #[tokio::test]
    async fn throttling_that_does_not_end_fails_with_a_clear_error() {
        let script = Script::default();
        for _ in 0..6 {
            script.answer("GetItem", 400, throttled());
        }
        let (_dir, store) = scripted_store(&script).await;
        let error = store
            .run(&suite::alice(), "r")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("reading run"), "{error}");
        assert!(error.contains("ProvisionedThroughputExceeded"), "{error}");
        assert_eq!(script.calls("GetItem").len(), 6);
    }

    #[tokio::test]
    async fn unprocessed_batch_items_are_sent_again() {
        let script = Script::default();
        let alice_pk = "U#alice";
        let records = "U#alice#R#r";
        script.answer(
            "GetItem",
            200,
            serde_json::json!({"Item": {"pk": {"S": alice_pk}, "sk": {"S": "RUN#r"}}}),
        );
        let keys: Vec<serde_json::Value> = (0..3)
            .map(|position| serde_json::json!({"pk": {"S": records}, "sk": {"S": record_sk(position, 0)}}))
            .collect();
        script.answer("Query", 200, serde_json::json!({"Items": keys, "Count": 3}));
        script.answer("Query", 200, serde_json::json!({"Items": [], "Count": 0}));
        script.answer(
            "BatchWriteItem",
            200,
            serde_json::json!({"UnprocessedItems": {"t": [{"DeleteRequest": {"Key": keys[2]}}]}}),
        );
        script.answer(
            "BatchWriteItem",
            200,
            serde_json::json!({"UnprocessedItems": {"t": [{"DeleteRequest": {"Key": keys[2]}}]}}),
        );
        script.answer(
            "BatchWriteItem",
            200,
            serde_json::json!({"UnprocessedItems": {}}),
        );
        // The run's score index: none left.
        script.answer("Query", 200, serde_json::json!({"Items": [], "Count": 0}));
        script.answer("DeleteItem", 200, serde_json::json!({}));
        let (_dir, store) = scripted_store(&script).await;
        assert!(store.delete_run(&suite::alice(), "r").await.unwrap());
        let batches = script.calls("BatchWriteItem");
        let sizes: Vec<usize> = batches
            .iter()
            .map(|call| call["RequestItems"]["t"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [3, 1, 1]);
        assert_eq!(
            batches[2]["RequestItems"]["t"][0]["DeleteRequest"]["Key"],
            keys[2]
        );
        assert_eq!(script.calls("DeleteItem").len(), 1);
    }

    #[tokio::test]
    async fn batch_items_left_unprocessed_after_every_retry_fail_the_call() {
        let script = Script::default();
        let key = serde_json::json!({"pk": {"S": "SESSIONS"}, "sk": {"S": "h"}});
        script.answer(
            "Query",
            200,
            serde_json::json!({"Items": [key], "Count": 1}),
        );
        for _ in 0..MAX_ATTEMPTS {
            script.answer(
                "BatchWriteItem",
                200,
                serde_json::json!({"UnprocessedItems": {"t": [{"DeleteRequest": {"Key": key}}]}}),
            );
        }
        let (_dir, store) = scripted_store(&script).await;
        let error = store.purge_sessions().await.unwrap_err();
        assert!(
            matches!(error, StoreError::Unprocessed { left: 1, .. }),
            "{error}"
        );
        assert_eq!(script.calls("BatchWriteItem").len(), MAX_ATTEMPTS as usize);
    }
}
