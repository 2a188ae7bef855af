//! A batch as etcd will hold it: keys under the store's prefix, values in pieces, each key
//! written once, cut into transactions etcd accepts.

use std::collections::BTreeMap;

use super::client::TxnOp;
use super::pieces::{self, PIECE};

/// Most operations in one transaction (etcd's `--max-txn-ops` is 128; room is left for the
/// conditions and the fence).
pub(super) const TXN_OPS: usize = 100;
/// Most bytes of keys and values in one transaction (etcd's `--max-request-bytes` is 1.5 MiB).
pub(super) const TXN_BYTES: usize = 1_200_000;
/// The largest value the store keeps.
pub(super) const MAX_VALUE: usize = 64 << 20;
/// The longest key.
pub(super) const MAX_KEY: usize = 4 << 10;

/// A write under its full key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

impl Op {
    pub(super) fn key(&self) -> &[u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }

    pub(super) fn size(&self) -> usize {
        match self {
            Op::Put(k, v) => k.len() + v.len() + 16,
            Op::Delete(k) => k.len() + 16,
        }
    }

    pub(super) fn txn_op(&self) -> TxnOp {
        match self {
            Op::Put(k, v) => TxnOp::Put { key: k.clone(), value: v.clone(), lease: 0 },
            Op::Delete(k) => TxnOp::Delete(k.clone()),
        }
    }
}

/// A batch ready for etcd: the writes (each key once: the last write of a key in the batch,
/// as applying them in order would leave it) and the pieces to write before them.
pub(super) struct Planned {
    pub(super) ops: Vec<Op>,
    pub(super) pieces: Vec<Op>,
}

impl Planned {
    /// The piece areas this batch's values use (never cleaned up as replaced).
    pub(super) fn areas(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.ops.iter().filter_map(|op| if let Op::Put(_, v) = op { pieces::pieces_of(prefix, v) } else { None }).collect()
    }
}

/// Plans a batch of store keys and values under `prefix`; a key or value the store cannot
/// keep is an error that names it, its size and the limit.
pub(super) fn plan(prefix: &[u8], ops: crate::state::Ops) -> Result<Planned, String> {
    let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for (k, v) in ops {
        if k.len() > MAX_KEY {
            return Err(format!(
                "cannot store the key {}…: it is {} bytes, and the etcd store takes keys up to {MAX_KEY} bytes",
                String::from_utf8_lossy(&k[..64]),
                k.len()
            ));
        }
        if let Some(v) = &v {
            if v.len() > MAX_VALUE {
                return Err(format!(
                    "cannot store the value of {}: it is {} bytes, and the etcd store keeps values up to {} MiB; nothing was written",
                    String::from_utf8_lossy(&k),
                    v.len(),
                    MAX_VALUE >> 20
                ));
            }
        }
        last.insert(k, v);
    }
    let mut planned = Planned { ops: Vec::with_capacity(last.len()), pieces: Vec::new() };
    for (k, v) in last {
        let key = [prefix, &k].concat();
        match v {
            None => planned.ops.push(Op::Delete(key)),
            Some(v) => {
                let (head, pieces) = pieces::encode(prefix, v);
                planned.pieces.extend(pieces.into_iter().map(|(k, v)| Op::Put(k, v)));
                planned.ops.push(Op::Put(key, head));
            }
        }
    }
    Ok(planned)
}

/// Cuts `ops` into runs that fit one transaction beside `reserved_ops` other operations.
pub(super) fn chunks(ops: &[Op], reserved_ops: usize) -> Vec<&[Op]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, op) in ops.iter().enumerate() {
        let n = i - start;
        if n > 0 && (n + reserved_ops >= TXN_OPS || bytes + op.size() > TXN_BYTES) {
            out.push(&ops[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += op.size();
    }
    if start < ops.len() {
        out.push(&ops[start..]);
    }
    out
}

/// Whether `ops` fit one transaction beside `reserved_ops` others.
pub(super) fn fit(ops: &[Op], reserved_ops: usize) -> bool {
    ops.len() + reserved_ops < TXN_OPS && ops.iter().map(Op::size).sum::<usize>() <= TXN_BYTES
}

/// Ops as bytes: per op a tag (1 put, 0 delete), the key's length (`u32` BE) and the key, and
/// for a put the value's length and the value.
pub(super) fn encode(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        let (tag, key, value) = match op {
            Op::Put(k, v) => (1u8, k, Some(v)),
            Op::Delete(k) => (0u8, k, None),
        };
        out.push(tag);
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
    out
}

/// The ops [`encode`] wrote.
pub(super) fn decode(mut bytes: &[u8]) -> Result<Vec<Op>, String> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if bytes.len() < n {
            return Err("a staged batch is cut short".into());
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    fn len(bytes: &mut &[u8]) -> Result<usize, String> {
        Ok(u32::from_be_bytes(take(bytes, 4)?.try_into().expect("4 bytes")) as usize)
    }
    let mut ops = Vec::new();
    while !bytes.is_empty() {
        let tag = take(&mut bytes, 1)?[0];
        let n = len(&mut bytes)?;
        let key = take(&mut bytes, n)?.to_vec();
        ops.push(match tag {
            1 => {
                let n = len(&mut bytes)?;
                Op::Put(key, take(&mut bytes, n)?.to_vec())
            }
            0 => Op::Delete(key),
            t => return Err(format!("a staged batch holds an unknown operation ({t})")),
        });
    }
    Ok(ops)
}

/// Groups ops into records of at most about [`PIECE`] bytes each.
pub(super) fn records(ops: &[Op]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<Op> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        if !current.is_empty() && bytes + op.size() > PIECE {
            out.push(encode(&current));
            (current, bytes) = (Vec::new(), 0);
        }
        bytes += op.size();
        current.push(op.clone());
    }
    if !current.is_empty() {
        out.push(encode(&current));
    }
    out
}
