//! Durable state: runs, steps, events, logs, locks and level history.
//!
//! Everything lives in one ordered key-value space (sled on disk behind a write-ahead log, an
//! etcd cluster (`etcd/`), a map in tests) under prefixed keys, so that one batch can carry
//! every transition of a scheduling round and one flush makes them all durable together (group
//! commit).

pub mod audit;
mod chain;
mod dirs;
mod etcd;
mod events;
mod kv;
mod origin;
mod records;
mod sled_kv;
mod sled_lock;
mod sled_pieces;
mod store;
mod trace;
mod wal;

pub use chain::genesis;
pub use dirs::create_durable;
#[cfg(any(test, feature = "testing"))]
pub use etcd::EtcdCluster;
pub use etcd::{Compare, EndpointStatus, Etcd, EtcdError, EtcdKv, EtcdUrl, Fence, KeyValue, Member, TlsFiles, Txn, TxnOp, TxnResponse};
pub use kv::{Cond, Entry, Kv, MemKv, Ops};
pub use records::{
    AlertGroup, AlertOrigin, Approval, EventKind, EventRecord, LevelHistory, LogRecord, PlanKind, RunRecord, RunStatus, SkipReason,
    StepRecord, StepStatus, TraceContext,
};
pub use sled_kv::{OpenError, SledKv, open_sled};
pub use store::{Batch, Seen, Store, StoreError};

/// The version of the stored format; a newer binary reads every older one. 2: sled holds
/// values over 4 KiB in pieces (`sled_pieces.rs`), which a binary of format 1 would misread.
/// 3: events are hash-chained (`chain.rs`); a binary of format 2 would append unchained
/// events that `phoenix audit verify` must then call tampered, so it is refused.
pub const FORMAT_VERSION: u32 = 3;
