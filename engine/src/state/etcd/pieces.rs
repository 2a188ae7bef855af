//! Values larger than one etcd request takes, stored in pieces.
//!
//! etcd refuses a request over `--max-request-bytes` (1.5 MiB by default). A value of at most
//! [`PIECE`] bytes is stored as it is under its key (unless it starts with `0xFF`: then
//! `0xFF 0x00` + value). A longer value is cut into pieces under `{prefix}p/UID/NNNNNNNN`,
//! written before the commit that puts its header under the key: `0xFF 0x01`, the length
//! (`u64` BE), the number of pieces (`u32` BE), then UID. The pieces of a UID never change;
//! a reader reads them at the revision it read the header at, so a value replaced meanwhile
//! still reads whole. A commit that replaces or deletes a value in pieces deletes its pieces
//! after it (a crash in between leaves them unreferenced: space, not data).

use super::client::{Etcd, EtcdError};
use crate::state::Entry;

/// The longest value stored under its key as it is.
pub(super) const PIECE: usize = 1_000_000;

const MARK: u8 = 0xFF;
const ESCAPED: u8 = 0;
const SPLIT: u8 = 1;

/// The key range of pieces: `{prefix}p/`.
pub(super) fn area(prefix: &[u8]) -> Vec<u8> {
    [prefix, b"p/"].concat()
}

fn piece_key(prefix: &[u8], uid: &[u8], n: usize) -> Vec<u8> {
    [area(prefix).as_slice(), uid, format!("/{n:08}").as_bytes()].concat()
}

/// A value as stored under its key, and the pieces to write before it.
pub(super) fn encode(prefix: &[u8], value: Vec<u8>) -> (Vec<u8>, Vec<Entry>) {
    if value.len() <= PIECE {
        if value.first() == Some(&MARK) {
            return ([&[MARK, ESCAPED][..], &value].concat(), Vec::new());
        }
        return (value, Vec::new());
    }
    let uid = format!("{:032x}", rand::random::<u128>()).into_bytes();
    let pieces: Vec<_> = value.chunks(PIECE).enumerate().map(|(n, p)| (piece_key(prefix, &uid, n), p.to_vec())).collect();
    let mut head = vec![MARK, SPLIT];
    head.extend_from_slice(&(value.len() as u64).to_be_bytes());
    head.extend_from_slice(&(pieces.len() as u32).to_be_bytes());
    head.extend_from_slice(&uid);
    (head, pieces)
}

/// The key prefix of a stored header's pieces, if it is one.
pub(super) fn pieces_of(prefix: &[u8], stored: &[u8]) -> Option<Vec<u8>> {
    match stored {
        [MARK, SPLIT, rest @ ..] if rest.len() > 12 => Some([area(prefix).as_slice(), &rest[12..], b"/"].concat()),
        _ => None,
    }
}

/// The value stored under `key` as `stored`, its pieces read at `revision`.
pub(super) fn decode(etcd: &Etcd, prefix: &[u8], key: &[u8], stored: Vec<u8>, revision: i64) -> Result<Vec<u8>, ReadError> {
    let damaged = |what: String| ReadError::Damaged(format!("the value of {} {what}", String::from_utf8_lossy(key)));
    match stored.as_slice() {
        [MARK, ESCAPED, rest @ ..] => Ok(rest.to_vec()),
        [MARK, SPLIT, rest @ ..] if rest.len() > 12 => {
            let len = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
            let count = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
            let area = pieces_of(prefix, &stored).expect("a header");
            let (pieces, _) = etcd.range_prefix_at(&area, revision).map_err(ReadError::Etcd)?;
            if pieces.len() != count {
                return Err(damaged(format!("has {} of its {count} pieces", pieces.len())));
            }
            let mut out = Vec::with_capacity(len);
            for p in pieces {
                out.extend_from_slice(&p.value);
            }
            if out.len() != len { Err(damaged(format!("is {} bytes, not {len}", out.len()))) } else { Ok(out) }
        }
        [MARK, ..] => Err(damaged("has an unknown form".into())),
        _ => Ok(stored),
    }
}

/// Why a value could not be read.
pub(super) enum ReadError {
    Etcd(EtcdError),
    Damaged(String),
}
