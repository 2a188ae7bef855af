//! etcd's v3 API as its gRPC JSON gateway speaks it: keys and values in base64, int64 as
//! strings, defaults left out (`succeeded` absent is `false`, an empty value is absent).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::client::{Compare, KeyValue, Txn, TxnOp};

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    v.as_str().and_then(|s| STANDARD.decode(s).ok()).unwrap_or_default()
}

/// An int64 as the gateway writes it (a string), or a number; absent is 0.
pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// A uint64 (member ids use the whole range).
pub(crate) fn uint(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// The key just past every key that starts with `prefix` (etcd's `range_end` for a prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // Every key: etcd reads "\0" as "to the end".
    vec![0]
}

pub(crate) fn key_value(v: &Value) -> KeyValue {
    KeyValue {
        key: unb64(&v["key"]),
        value: unb64(&v["value"]),
        create_revision: int(&v["create_revision"]),
        mod_revision: int(&v["mod_revision"]),
        lease: int(&v["lease"]),
    }
}

pub(crate) fn kvs(v: &Value) -> Vec<KeyValue> {
    v["kvs"].as_array().map(|a| a.iter().map(key_value).collect()).unwrap_or_default()
}

fn compare(c: &Compare) -> Value {
    match c {
        Compare::CreateRevision(k, rev) => json!({"target": "CREATE", "result": "EQUAL", "key": b64(k), "createRevision": rev.to_string()}),
        Compare::Value(k, v) => json!({"target": "VALUE", "result": "EQUAL", "key": b64(k), "value": b64(v)}),
    }
}

/// One operation of a transaction; `prev_kv` asks puts and deletes for what they replaced.
pub(crate) fn op(o: &TxnOp, prev_kv: bool) -> Value {
    match o {
        TxnOp::Put { key, value, lease } => {
            json!({"requestPut": {"key": b64(key), "value": b64(value), "lease": lease.to_string(), "prevKv": prev_kv}})
        }
        TxnOp::Delete(key) => json!({"requestDeleteRange": {"key": b64(key), "prevKv": prev_kv}}),
        TxnOp::Get(key) => json!({"requestRange": {"key": b64(key)}}),
    }
}

pub(crate) fn txn(t: &Txn, prev_kv: bool) -> Value {
    json!({
        "compare": t.compare.iter().map(compare).collect::<Vec<_>>(),
        "success": t.success.iter().map(|o| op(o, prev_kv)).collect::<Vec<_>>(),
        "failure": t.failure.iter().map(|o| op(o, prev_kv)).collect::<Vec<_>>(),
    })
}

/// What a transaction answered: whether it took the success branch, the store's revision,
/// one entry per Get of that branch, and the values its puts and deletes replaced.
pub(crate) struct TxnAnswer {
    pub(crate) succeeded: bool,
    pub(crate) revision: i64,
    pub(crate) gets: Vec<Option<KeyValue>>,
    pub(crate) replaced: Vec<KeyValue>,
    /// Another member failed the request first: it may have applied it already.
    pub(crate) uncertain: bool,
}

pub(crate) fn txn_answer(v: &Value) -> TxnAnswer {
    let mut a = TxnAnswer {
        succeeded: v["succeeded"].as_bool().unwrap_or(false),
        revision: int(&v["header"]["revision"]),
        gets: Vec::new(),
        replaced: Vec::new(),
        uncertain: false,
    };
    for r in v["responses"].as_array().into_iter().flatten() {
        if let Some(range) = r.get("response_range") {
            a.gets.push(kvs(range).into_iter().next());
        } else if let Some(put) = r.get("response_put") {
            if put.get("prev_kv").is_some() {
                a.replaced.push(key_value(&put["prev_kv"]));
            }
        } else if let Some(del) = r.get("response_delete_range") {
            a.replaced.extend(del["prev_kvs"].as_array().into_iter().flatten().map(key_value));
        }
    }
    a
}
