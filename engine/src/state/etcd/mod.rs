//! The etcd backend: a synchronous client of etcd's v3 JSON gateway ([`client`]) and the
//! store behind the [`Kv`](super::Kv) trait on it.

mod client;
#[cfg(any(test, feature = "testing"))]
mod testing;
mod wire;

pub use client::{Compare, EndpointStatus, Etcd, EtcdError, KeyValue, Member, Txn, TxnOp, TxnResponse};
#[cfg(any(test, feature = "testing"))]
pub use testing::EtcdCluster;

#[cfg(test)]
mod client_tests;
