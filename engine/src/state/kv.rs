//! The storage backend: an ordered byte map with atomic batches and a durability barrier.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered key-value space.
pub trait Kv: Send + Sync {
    /// The value of a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String>;
    /// The last entry whose key starts with `prefix`.
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String>;
    /// Applies puts (`Some`) and deletes (`None`) atomically.
    fn apply(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String>;
    /// Returns once everything applied so far is on stable storage.
    fn flush(&self) -> Result<(), String>;
    /// Applies a batch; with `durable`, returns only once it (and all before it) is on
    /// stable storage.
    fn commit(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>, durable: bool) -> Result<(), String> {
        if !ops.is_empty() {
            self.apply(ops)?;
        }
        if durable { self.flush() } else { Ok(()) }
    }
}

/// An in-memory backend, for tests.
#[derive(Default)]
pub struct MemKv {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Kv for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.map.lock().expect("poisoned").get(key).cloned())
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        let m = self.map.lock().expect("poisoned");
        Ok(m.range(prefix.to_vec()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String> {
        Ok(self.scan(prefix)?.pop())
    }
    fn apply(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String> {
        let mut m = self.map.lock().expect("poisoned");
        for (k, v) in ops {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), String> {
        Ok(())
    }
}
