//! The state store's write-ahead log: one checksummed record per commit, one `fdatasync`.
//!
//! The file is allocated ahead (zeros, written once, so that a sync has no file size or
//! block allocation to record, only the data) and records overwrite it from the start in
//! rounds. Every record of a round carries the round's random epoch; a round ends when the
//! records it holds are safely in sled, and the next one starts with an end mark at offset 0.
//!
//! Reading stops at the first record that is empty, cut short, fails its checksum, or
//! carries another epoch than the first (a leftover of an earlier round). Records are
//! written one after another and a durable commit syncs everything before it, so a record
//! cut short by a crash is the last one and was never acknowledged as durable.
//!
//! Every record is written at the log's own cursor (`pwrite`), never at the file's position:
//! a write that fails part way advances nothing, and the next record overwrites what it left.
//! A failed `fdatasync` is final (the kernel may have dropped the pages it could not write
//! and report the next sync as a success): the log refuses every later write and says why.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

pub(super) use super::kv::Ops;

/// A record's header: payload length, checksum, epoch.
const HEADER: usize = 16;

/// The log file of one store, owned by the process that holds sled's lock.
pub(super) struct Wal {
    file: File,
    /// Where the next record goes.
    pos: u64,
    /// The allocated size: a record that would pass it must wait for a new round.
    capacity: u64,
    /// This round's epoch: every record carries it.
    epoch: u64,
    /// Written since the last sync.
    unsynced: bool,
    /// Why the log takes no more writes: a sync of it (or of sled behind it) failed.
    broken: Option<String>,
    /// Failures to inject, for tests.
    #[cfg(test)]
    pub(super) faults: Faults,
}

/// Failures a test makes the log's next write or sync meet.
#[cfg(test)]
#[derive(Default)]
pub(super) struct Faults {
    /// The next append writes this many bytes of its record, then fails.
    pub(super) cut_write: Option<usize>,
    /// The next sync fails.
    pub(super) fail_sync: bool,
}

impl Wal {
    /// Opens (creating and allocating it if needed) the log at `path`, and returns the
    /// intact records of its current round, oldest first. The caller must end the round
    /// ([`Wal::restart`]) once they are safe elsewhere, before appending.
    pub(super) fn open(path: &Path, capacity: u64) -> Result<(Wal, Vec<Ops>), String> {
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        if (bytes.len() as u64) < capacity {
            // Allocated once, with real blocks (a sparse file would allocate them at each sync).
            file.seek(SeekFrom::Start(bytes.len() as u64)).map_err(|e| e.to_string())?;
            let zeros = [0u8; 64 << 10];
            let mut left = capacity - bytes.len() as u64;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n]).map_err(|e| e.to_string())?;
                left -= n as u64;
            }
            file.sync_all().map_err(|e| e.to_string())?;
        }
        let found = records(&bytes);
        let wal = Wal {
            file,
            pos: 0,
            capacity,
            epoch: 0,
            unsynced: false,
            broken: None,
            #[cfg(test)]
            faults: Faults::default(),
        };
        Ok((wal, found))
    }

    /// Appends one record, unsynced. `Ok(false)`: it does not fit in what is left of this
    /// round (nothing written).
    pub(super) fn append(&mut self, ops: &Ops) -> Result<bool, String> {
        self.usable()?;
        let record = encode(ops, self.epoch);
        if self.pos + record.len() as u64 > self.capacity {
            return Ok(false);
        }
        // At the cursor: a write that fails part way leaves the cursor where it was, and the
        // next record overwrites the piece (a piece never passes its checksum).
        self.unsynced = true;
        self.write_at(&record, self.pos).map_err(|e| e.to_string())?;
        self.pos += record.len() as u64;
        Ok(true)
    }

    fn write_at(&mut self, bytes: &[u8], at: u64) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.faults.cut_write.take() {
            self.file.write_all_at(&bytes[..n.min(bytes.len())], at)?;
            return Err(std::io::Error::other("injected write failure"));
        }
        self.file.write_all_at(bytes, at)
    }

    fn sync_data(&mut self) -> Result<(), String> {
        #[cfg(test)]
        if std::mem::take(&mut self.faults.fail_sync) {
            return Err(self.poison("injected fdatasync failure"));
        }
        self.file.sync_data().map_err(|e| self.poison(&e.to_string()))
    }

    /// Refuses every later write: something this log stands for could not be made durable
    /// (`why`). Returns the error to report.
    pub(super) fn poison(&mut self, why: &str) -> String {
        let text = format!(
            "the state store stopped taking writes: making it durable failed ({why}). After a failed sync the system may have dropped what it could not write and cannot be trusted about it, so nothing more is written. Check the disk (`dmesg`), then start phoenix again: the store is reopened from what is really on disk, and `phoenix resume` carries on"
        );
        self.broken.get_or_insert(text).clone()
    }

    /// `Err` once the log was poisoned.
    pub(super) fn usable(&self) -> Result<(), String> {
        self.broken.as_ref().map_or(Ok(()), |why| Err(why.clone()))
    }

    /// Whether this round holds any record.
    pub(super) fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Returns once every record appended so far is on stable storage.
    pub(super) fn sync(&mut self) -> Result<(), String> {
        self.usable()?;
        if self.unsynced {
            self.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Ends the round: an end mark at offset 0 (synced), and a new epoch.
    pub(super) fn restart(&mut self) -> Result<(), String> {
        self.usable()?;
        self.write_at(&[0; HEADER], 0).map_err(|e| e.to_string())?;
        self.sync_data()?;
        self.pos = 0;
        self.epoch = rand::random();
        self.unsynced = false;
        Ok(())
    }
}

/// One record: `len: u32 LE`, `crc32(epoch, payload): u32 LE`, `epoch: u64 LE`, then the
/// payload: per op `key_len: u32`, key, `1` + `value_len: u32` + value for a put, `0` for a
/// delete.
fn encode(ops: &Ops, epoch: u64) -> Vec<u8> {
    let size: usize = ops.iter().map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, Vec::len)).sum();
    let mut out = Vec::with_capacity(HEADER + size);
    out.extend_from_slice(&[0; HEADER]);
    for (k, v) in ops {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.push(0),
        }
    }
    let len = (out.len() - HEADER) as u32;
    let crc = checksum(epoch, &out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out[8..16].copy_from_slice(&epoch.to_le_bytes());
    out
}

fn checksum(epoch: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&epoch.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// The complete, intact records of the log's current round, in order.
fn records(mut bytes: &[u8]) -> Vec<Ops> {
    let mut out = Vec::new();
    let mut round = None;
    while bytes.len() >= HEADER {
        let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let epoch = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let Some(payload) = bytes.get(HEADER..HEADER + len) else { break };
        if len == 0 || checksum(epoch, payload) != crc || *round.get_or_insert(epoch) != epoch {
            break;
        }
        let Some(ops) = decode(payload) else { break };
        out.push(ops);
        bytes = &bytes[HEADER + len..];
    }
    out
}

fn decode(mut p: &[u8]) -> Option<Ops> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (a, b) = (p.get(..n)?, p.get(n..)?);
        *p = b;
        Some(a)
    }
    fn len(p: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(p, 4)?.try_into().ok()?) as usize)
    }
    let mut ops = Vec::new();
    while !p.is_empty() {
        let klen = len(&mut p)?;
        let key = take(&mut p, klen)?.to_vec();
        let value = match take(&mut p, 1)?[0] {
            1 => {
                let vlen = len(&mut p)?;
                Some(take(&mut p, vlen)?.to_vec())
            }
            0 => None,
            _ => return None,
        };
        ops.push((key, value));
    }
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_ends_the_log() {
        let a: Ops = vec![(b"r/1".to_vec(), Some(b"{}".to_vec())), (b"k/x".to_vec(), None)];
        let b: Ops = vec![(b"e/1/0".to_vec(), Some(vec![0; 300]))];
        let mut log = encode(&a, 7);
        log.extend(encode(&b, 7));
        assert_eq!(records(&log), vec![a.clone(), b.clone()]);
        for cut in 1..encode(&b, 7).len() {
            assert_eq!(records(&log[..log.len() - cut]), vec![a.clone()], "cut {cut}");
        }
        let mut flipped = log.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(records(&flipped), vec![a.clone()]);
        // A leftover of an earlier round after this round's records, zeros, or an end mark.
        let mut stale = encode(&a, 9);
        stale.extend(encode(&b, 8));
        assert_eq!(records(&stale), vec![a.clone()]);
        let mut zeros = encode(&a, 9);
        zeros.extend([0; 64]);
        assert_eq!(records(&zeros), vec![a]);
        assert!(records(&[0; HEADER]).is_empty());
    }

    #[test]
    fn a_round_holds_what_fits_and_a_restart_forgets_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("wal");
        let (mut wal, found) = Wal::open(&path, 4096).unwrap();
        assert!(found.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096, "allocated ahead");
        wal.restart().unwrap();
        let op: Ops = vec![(b"k".to_vec(), Some(vec![1; 990]))];
        let mut fitted = 0;
        while wal.append(&op).unwrap() {
            fitted += 1;
        }
        assert_eq!(fitted, 4, "4 records of 1,016 bytes fit in 4,096, not 5");
        wal.sync().unwrap();
        drop(wal);
        let (mut wal, found) = Wal::open(&path, 4096).unwrap();
        assert_eq!(found.len(), 4);
        wal.restart().unwrap();
        assert!(wal.append(&vec![(b"j".to_vec(), None)]).unwrap());
        wal.sync().unwrap();
        drop(wal);
        // The new round's one record, not the old round's leftovers after it.
        let (_, found) = Wal::open(&path, 4096).unwrap();
        assert_eq!(found, vec![vec![(b"j".to_vec(), None)]]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096, "never grows");
    }

    #[test]
    fn a_write_that_fails_part_way_advances_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("wal");
        let (mut wal, _) = Wal::open(&path, 4096).unwrap();
        wal.restart().unwrap();
        let (a, b, c): (Ops, Ops, Ops) =
            (vec![(b"a".to_vec(), Some(vec![1; 100]))], vec![(b"b".to_vec(), Some(vec![2; 300]))], vec![(b"c".to_vec(), None)]);
        assert!(wal.append(&a).unwrap());
        wal.faults.cut_write = Some(200);
        assert!(wal.append(&b).is_err(), "a full disk, an I/O error: the record is not in the log");
        assert!(wal.append(&c).unwrap(), "the next record goes where the failed one began");
        wal.sync().unwrap();
        drop(wal);
        let (_, found) = Wal::open(&path, 4096).unwrap();
        assert_eq!(found, vec![a, c], "the record after a failed one is not lost behind its piece");
    }

    #[test]
    fn a_failed_sync_refuses_every_later_write() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(&tmp.path().join("wal"), 4096).unwrap();
        wal.restart().unwrap();
        assert!(wal.append(&vec![(b"a".to_vec(), None)]).unwrap());
        wal.faults.fail_sync = true;
        assert!(wal.sync().unwrap_err().contains("stopped taking writes"));
        assert!(wal.sync().is_err(), "not a success the second time");
        assert!(wal.append(&vec![(b"b".to_vec(), None)]).is_err());
        assert!(wal.restart().is_err());
    }
}
