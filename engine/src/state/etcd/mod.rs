//! The etcd backend: a synchronous client of etcd's v3 JSON gateway ([`client`]) and the
//! store behind the [`Kv`](super::Kv) trait on it ([`kv`]): batches planned for etcd's limits
//! ([`ops`]), values in pieces ([`pieces`]), large batches staged ([`staged`]).

mod client;
mod kv;
mod ops;
mod pieces;
mod staged;
#[cfg(any(test, feature = "testing"))]
mod testing;
mod tls;
mod url;
mod wire;

pub use client::{Compare, EndpointStatus, Etcd, EtcdError, KeyValue, Member, Txn, TxnOp, TxnResponse};
pub use kv::{EtcdKv, Fence};
#[cfg(any(test, feature = "testing"))]
pub use testing::EtcdCluster;
pub use url::{EtcdUrl, TlsFiles};

#[cfg(test)]
mod client_tests;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod kv_tests;
#[cfg(test)]
mod staged_tests;
