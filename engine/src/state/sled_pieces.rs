//! Values kept under sled's blob threshold.
//!
//! sled 0.34 writes a page larger than a quarter of its segment (512 KiB / 4, about 128 KiB)
//! to a file of its own under `db/blobs/`, and never syncs that file nor the directory
//! (`pagecache/blob_io.rs`: `write_blob` creates, writes, returns): its log, synced, then
//! points at a blob a power loss can take away. A leaf page holds at most 17 entries before
//! sled splits it (20 after a merge), so values of at most [`PIECE`] bytes keep every page far
//! below the threshold and sled never writes a blob. A longer value is cut into pieces under
//! keys of their own, written in the same sled batch as the value's header.
//!
//! In sled, a value is stored as it is unless it starts with `0xFF` (which no UTF-8 text or
//! JSON does: stores written before pieces existed read the same); `0xFF 0x00` + value is a
//! short value that starts with `0xFF`; `0xFF 0x01` + pieces (`u32` BE) + length (`u64` BE)
//! is a value in pieces. Pieces live under keys starting with `0xFF`, which no store key does.

/// The longest value stored in one sled entry.
pub(super) const PIECE: usize = 4 << 10;

const MARK: u8 = 0xFF;
const ESCAPED: u8 = 0;
const SPLIT: u8 = 1;

/// Whether a sled key is a piece's, not a store key.
pub(super) fn is_piece(key: &[u8]) -> bool {
    key.first() == Some(&MARK)
}

fn piece_key(key: &[u8], n: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(MARK);
    k.extend_from_slice(&(key.len() as u32).to_be_bytes());
    k.extend_from_slice(key);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// How many pieces a stored value has.
fn pieces_of(stored: &[u8]) -> u32 {
    match stored {
        [MARK, SPLIT, rest @ ..] if rest.len() >= 4 => u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")),
        _ => 0,
    }
}

/// Adds to `batch` the writes that put `value` (or delete it: `None`) under `key`, given what
/// sled holds there now (`old`): its pieces beyond the new value's are removed.
pub(super) fn put(batch: &mut sled::Batch, key: &[u8], value: Option<&[u8]>, old: Option<&[u8]>) {
    let before = old.map_or(0, pieces_of);
    let mut now: u32 = 0;
    match value {
        None => batch.remove(key),
        Some(v) if v.len() <= PIECE && v.first() != Some(&MARK) => batch.insert(key, v),
        Some(v) if v.len() <= PIECE => batch.insert(key, [&[MARK, ESCAPED][..], v].concat()),
        Some(v) => {
            for (n, piece) in v.chunks(PIECE).enumerate() {
                batch.insert(piece_key(key, n as u32), piece);
                now += 1;
            }
            let mut head = vec![MARK, SPLIT];
            head.extend_from_slice(&now.to_be_bytes());
            head.extend_from_slice(&(v.len() as u64).to_be_bytes());
            batch.insert(key, head);
        }
    }
    for n in now..before {
        batch.remove(piece_key(key, n));
    }
}

/// The value stored under `key` as `stored`, its pieces read from `db`.
pub(super) fn value(db: &sled::Db, key: &[u8], stored: &[u8]) -> Result<Vec<u8>, String> {
    let damaged = |what: &str| format!("the state store is damaged: the value of {} {what}", String::from_utf8_lossy(key));
    match stored {
        [MARK, ESCAPED, rest @ ..] => Ok(rest.to_vec()),
        [MARK, SPLIT, rest @ ..] if rest.len() == 12 => {
            let count = pieces_of(stored);
            let len = u64::from_be_bytes(rest[4..12].try_into().expect("8 bytes")) as usize;
            let mut out = Vec::with_capacity(len);
            for n in 0..count {
                let piece = db.get(piece_key(key, n)).map_err(|e| e.to_string())?.ok_or_else(|| damaged(&format!("lacks piece {n}")))?;
                out.extend_from_slice(&piece);
            }
            if out.len() != len { Err(damaged(&format!("is {} bytes, not {len}", out.len()))) } else { Ok(out) }
        }
        [MARK, ..] => Err(damaged("has an unknown form")),
        _ => Ok(stored.to_vec()),
    }
}
