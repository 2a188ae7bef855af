//! The sled backend's tests: reads through the log, crashes, sled's own repairs, pieces,
//! failed syncs, and a close that lets sled's lock go.

use super::*;

fn put(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
}

#[test]
fn reads_see_the_log_in_front_of_sled_and_a_crash_keeps_what_was_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    {
        let kv = open_sled(&dir).unwrap();
        kv.commit(vec![put("p/1", "a"), put("p/2", "b"), put("p/3", "c"), put("q/1", "x")], true).unwrap();
    }
    // Closed cleanly: sled has them. Now newer values in the log, in front of sled.
    let kv = open_sled(&dir).unwrap();
    kv.commit(vec![put("p/2", "B"), (b"p/3".to_vec(), None), put("p/0", "z")], true).unwrap();
    let keys = |es: Vec<Entry>| {
        es.into_iter().map(|(k, v)| format!("{}={}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v))).collect::<Vec<_>>()
    };
    assert_eq!(keys(kv.scan(b"p/").unwrap()), ["p/0=z", "p/1=a", "p/2=B"]);
    assert_eq!(kv.get(b"p/3").unwrap(), None);
    assert_eq!(kv.get(b"p/2").unwrap(), Some(b"B".to_vec()));
    assert_eq!(kv.last(b"p/").unwrap().map(|(k, _)| k), Some(b"p/2".to_vec()), "p/3 is deleted");
    kv.commit(vec![put("p/9", "n")], true).unwrap();
    assert_eq!(kv.last(b"p/").unwrap().map(|(k, _)| k), Some(b"p/9".to_vec()));
    assert_eq!(kv.last(b"q/").unwrap().map(|(k, _)| k), Some(b"q/1".to_vec()));
    assert_eq!(kv.last(b"z/").unwrap(), None);
    // No clean close: what was synced is in the log only.
    let log = std::fs::read(dir.join("wal")).unwrap();
    let sled_files = dir.join("db");
    std::mem::forget(kv);
    // sled's lock belongs to the forgotten handle: copy the store the way the crash left it.
    let copy = dir.join("copy");
    copy_dir(&sled_files, &copy.join("db"));
    std::fs::write(copy.join("wal"), &log).unwrap();
    let kv = open_sled(&copy).unwrap();
    assert_eq!(keys(kv.scan(b"p/").unwrap()), ["p/0=z", "p/1=a", "p/2=B", "p/9=n"]);
    // Past the log's size, sled takes what it holds and the log starts again.
    for i in 0..3000u32 {
        kv.commit(vec![(format!("k/{i:05}").into_bytes(), Some(vec![1; 500]))], false).unwrap();
    }
    kv.flush().unwrap();
    assert_eq!(std::fs::metadata(copy.join("wal")).unwrap().len(), LOG_BYTES, "never grows");
    assert_eq!(kv.scan(b"k/").unwrap().len(), 3000);
    assert_eq!(kv.get(b"k/00000").unwrap(), Some(vec![1; 500]));
    // A batch larger than the whole log goes to sled directly.
    kv.commit(vec![put("big", &"x".repeat(LOG_BYTES as usize))], true).unwrap();
    assert_eq!(kv.get(b"big").unwrap().map(|v| v.len()), Some(LOG_BYTES as usize));
}

#[test]
fn a_snapshot_that_a_kill_cut_short_is_dropped_and_the_store_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    {
        let kv = open_sled(&dir).unwrap();
        kv.commit(vec![put("run/1", "kept")], true).unwrap();
    }
    // What a kill leaves while sled writes its snapshot at an open: the file it had begun,
    // newer than any finished one.
    let db = dir.join("db");
    std::fs::write(db.join("snap.7FFFFFFFFFFFFFFF.generating"), b"cut").unwrap();
    assert!(matches!(open_db(&db), Err(sled::Error::Corruption { at: None, .. })), "sled alone cannot open it");
    let kv = open_sled(&dir).unwrap();
    assert_eq!(kv.get(b"run/1").unwrap(), Some(b"kept".to_vec()));
    assert!(!db.join("snap.7FFFFFFFFFFFFFFF.generating").exists());
}

#[test]
fn a_configuration_that_a_kill_cut_short_in_a_new_store_is_written_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    // What a kill leaves between sled's two writes of `conf`, at the very first open: the
    // settings without their checksum, and a data file that never got anything.
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("conf"), "segment_size: 524288\nuse_compression: false\nversion: 0.34\n").unwrap();
    std::fs::write(db.join("db"), b"").unwrap();
    assert!(open_db(&db).is_err(), "sled alone cannot open it");
    let kv = open_sled(&dir).unwrap();
    kv.commit(vec![put("run/1", "new")], true).unwrap();
    assert_eq!(kv.get(b"run/1").unwrap(), Some(b"new".to_vec()));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_value_past_sleds_blob_threshold_is_kept_in_pieces_and_never_in_a_blob_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let big: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i % 251) as u8).collect();
    let escaped = vec![0xFF, 0, 1];
    {
        let kv = open_sled(&dir).unwrap();
        // Larger than the whole log: straight to sled; and one through the log's round.
        kv.commit(vec![(b"src/a".to_vec(), Some(big.clone()))], true).unwrap();
        kv.commit(vec![(b"src/b".to_vec(), Some(big[..60_000].to_vec())), (b"x".to_vec(), Some(escaped.clone()))], true).unwrap();
    }
    let blobs = |d: &Path| std::fs::read_dir(d.join("db/blobs")).map_or(0, |r| r.count());
    assert_eq!(blobs(&dir), 0, "sled wrote a blob file, which it never syncs");
    let kv = open_sled(&dir).unwrap();
    assert_eq!(kv.get(b"src/a").unwrap().as_deref(), Some(big.as_slice()));
    assert_eq!(kv.get(b"src/b").unwrap().as_deref(), Some(&big[..60_000]));
    assert_eq!(kv.get(b"x").unwrap(), Some(escaped), "a short value starting with 0xFF reads back as it was");
    let scanned = kv.scan(b"").unwrap();
    assert_eq!(scanned.iter().map(|(k, _)| k.as_slice()).collect::<Vec<_>>(), [&b"src/a"[..], b"src/b", b"x"], "no piece shows");
    assert_eq!(scanned[0].1, big);
    assert_eq!(kv.last(b"src/").unwrap().map(|(_, v)| v.len()), Some(60_000));
    // Replaced by a short value, then deleted: no piece is left behind.
    kv.commit(vec![(b"src/a".to_vec(), Some(b"short".to_vec()))], true).unwrap();
    kv.commit(vec![(b"src/b".to_vec(), None), (b"pad".to_vec(), Some(vec![b'p'; 70_000]))], true).unwrap();
    drop(kv);
    let kv = open_sled(&dir).unwrap();
    assert_eq!(kv.get(b"src/a").unwrap(), Some(b"short".to_vec()));
    assert_eq!(kv.get(b"src/b").unwrap(), None);
    let leftovers: Vec<_> = kv.db.iter().keys().filter_map(Result::ok).filter(|k| pieces::is_piece(k)).collect();
    assert_eq!(leftovers.len(), 70_000usize.div_ceil(pieces::PIECE), "only the pieces of `pad`");
    assert_eq!(blobs(&dir), 0);
}

#[test]
fn a_failed_fdatasync_is_final() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let kv = open_sled(&dir).unwrap();
    kv.commit(vec![put("r/1", "synced")], true).unwrap();
    kv.wal.lock().unwrap().faults.fail_sync = true;
    let first = kv.commit(vec![put("r/2", "maybe")], true).unwrap_err();
    assert!(first.contains("stopped taking writes") && first.contains("injected fdatasync failure"), "{first}");
    // The next sync would report success for pages the system may have dropped: refused.
    for later in [kv.commit(vec![put("r/3", "never")], true), kv.commit(vec![put("r/3", "never")], false), kv.flush()] {
        assert!(later.unwrap_err().contains("stopped taking writes"));
    }
    assert!(kv.commit_if(&[Cond::Absent(b"r/1".to_vec())], vec![], true).is_err());
    assert_eq!(kv.get(b"r/1").unwrap(), Some(b"synced".to_vec()), "reads go on");
    assert_eq!(kv.get(b"r/3").unwrap(), None);
    drop(kv);
    // A new process believes only the disk: the log is replayed.
    let kv = open_sled(&dir).unwrap();
    assert_eq!(kv.get(b"r/1").unwrap(), Some(b"synced".to_vec()));
    assert_eq!(kv.get(b"r/3").unwrap(), None);
    kv.commit(vec![put("r/4", "again")], true).unwrap();
}

#[test]
fn a_condition_is_checked_against_the_log_and_sled_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let kv = open_sled(tmp.path()).unwrap();
    let absent = |k: &str| Cond::Absent(k.as_bytes().to_vec());
    assert!(kv.commit_if(&[absent("k/dr")], vec![put("k/dr", "a")], true).unwrap());
    assert!(!kv.commit_if(&[absent("k/dr")], vec![put("k/dr", "b"), put("r/b", "{}")], true).unwrap());
    assert_eq!(kv.get(b"r/b").unwrap(), None, "nothing of the losing batch");
    // Past the log's size: the holder is in sled now, not in the log's round.
    for i in 0..200u32 {
        kv.commit(vec![(format!("p/{i}").into_bytes(), Some(vec![0; 1000]))], false).unwrap();
    }
    assert!(!kv.commit_if(&[absent("k/dr")], vec![put("k/dr", "c")], true).unwrap());
    assert!(kv.commit_if(&[Cond::Equals(b"k/dr".to_vec(), b"a".to_vec())], vec![(b"k/dr".to_vec(), None)], true).unwrap());
    assert!(kv.commit_if(&[absent("k/dr")], vec![put("k/dr", "c")], true).unwrap());
}

#[test]
fn an_open_waits_for_a_lock_this_process_is_letting_go() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    drop(open_sled(&dir).unwrap());
    // What a sled I/O thread finishing a write after the store was dropped looks like: the
    // lock held a while longer by this process.
    let file = std::fs::File::open(dir.join("db/db")).unwrap();
    file.lock().unwrap();
    let letting_go = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(file);
    });
    let kv = open_sled(&dir).expect("opens once this process has let go of its lock");
    kv.commit(vec![put("r/1", "a")], true).unwrap();
    letting_go.join().unwrap();
    // Closed and opened again at once, many times: each close waits for sled to let go.
    drop(kv);
    for i in 0..20 {
        let kv = open_sled(&dir).unwrap_or_else(|e| panic!("reopen {i}: {e}"));
        kv.commit(vec![(b"big".to_vec(), Some(vec![i as u8; 200_000]))], true).unwrap();
    }
}
