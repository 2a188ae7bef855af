//! The storage backend: an ordered byte map with atomic, conditional batches and a
//! durability barrier.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Puts (`Some`) and deletes (`None`), applied in order.
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// What a conditional commit requires of one key before it writes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// The key has no value.
    Absent(Vec<u8>),
    /// The key holds exactly this value.
    Equals(Vec<u8>, Vec<u8>),
}

impl Cond {
    /// Whether the condition holds, given the key's current value.
    pub fn holds(&self, get: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, String>) -> Result<bool, String> {
        Ok(match self {
            Cond::Absent(k) => get(k)?.is_none(),
            Cond::Equals(k, v) => get(k)?.as_deref() == Some(v.as_slice()),
        })
    }
}

/// An ordered key-value space.
///
/// Every commit is atomic, and a commit's conditions are checked under the same exclusion
/// as its writes: two commits conditioned on the same key never both succeed on the value
/// one of them replaces (a compare-and-set, as an etcd transaction would be).
pub trait Kv: Send + Sync {
    /// The value of a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String>;
    /// The last entry whose key starts with `prefix`.
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String>;
    /// If every condition holds, applies the batch atomically and returns `true`; with
    /// `durable`, only once it (and all before it) is on stable storage. `Ok(false)`: a
    /// condition did not hold, and nothing was written.
    fn commit_if(&self, conds: &[Cond], ops: Ops, durable: bool) -> Result<bool, String>;
    /// Applies a batch; with `durable`, returns only once it (and all before it) is on
    /// stable storage.
    fn commit(&self, ops: Ops, durable: bool) -> Result<(), String> {
        self.commit_if(&[], ops, durable).map(|_| ())
    }
    /// Applies puts (`Some`) and deletes (`None`) atomically.
    fn apply(&self, ops: Ops) -> Result<(), String> {
        self.commit(ops, false)
    }
    /// Returns once everything applied so far is on stable storage.
    fn flush(&self) -> Result<(), String> {
        self.commit(Vec::new(), true)
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
    fn commit_if(&self, conds: &[Cond], ops: Ops, _durable: bool) -> Result<bool, String> {
        // One lock for the check and the writes: nobody commits in between.
        let mut m = self.map.lock().expect("poisoned");
        for c in conds {
            if !c.holds(|k| Ok(m.get(k).cloned()))? {
                return Ok(false);
            }
        }
        for (k, v) in ops {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_whose_condition_fails_writes_nothing() {
        let kv = MemKv::default();
        let put = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
        assert!(kv.commit_if(&[Cond::Absent(b"k/dr".to_vec())], vec![put("k/dr", "a"), put("r/a", "{}")], true).unwrap());
        assert!(!kv.commit_if(&[Cond::Absent(b"k/dr".to_vec())], vec![put("k/dr", "b"), put("r/b", "{}")], true).unwrap());
        assert_eq!(kv.get(b"k/dr").unwrap(), Some(b"a".to_vec()));
        assert_eq!(kv.get(b"r/b").unwrap(), None, "nothing of the losing batch");
        assert!(!kv.commit_if(&[Cond::Equals(b"k/dr".to_vec(), b"x".to_vec())], vec![put("k/dr", "c")], true).unwrap());
        assert!(kv.commit_if(&[Cond::Equals(b"k/dr".to_vec(), b"a".to_vec())], vec![put("k/dr", "c")], true).unwrap());
        assert_eq!(kv.get(b"k/dr").unwrap(), Some(b"c".to_vec()));
    }
}
