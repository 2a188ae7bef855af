//! How much of a step's output the store keeps: the first [`HEAD`] bytes and the last
//! [`TAIL`] bytes of each step, and between them one line saying how much was left out.
//!
//! A step that prints without end (a verbose `terraform apply`, `aws s3 sync` naming every
//! object) would otherwise grow the store until its disk is full, and then nothing more of
//! the run could be recorded. The terminal still shows every line as it comes; the step's
//! `stdout`/`stderr` outputs keep their own tails.

use std::collections::VecDeque;

/// Bytes of a step's first lines that are always kept.
pub(crate) const HEAD: usize = 256 << 10;
/// Bytes of a step's last lines that are kept.
pub(crate) const TAIL: usize = 1 << 20;

/// What is left out of one step's output so far: the line that says so takes the number
/// (`seq`) and time of the first line left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeftOut {
    pub(crate) seq: u64,
    pub(crate) at: u64,
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

impl LeftOut {
    pub(crate) fn text(&self) -> String {
        format!(
            "[phoenix] {} line(s) ({}) of this step's output left out here: the store keeps the first {} and the last {} of a step's output",
            self.lines,
            bytes(self.bytes),
            bytes(HEAD as u64),
            bytes(TAIL as u64)
        )
    }
}

fn bytes(n: u64) -> String {
    let (v, unit) = match n {
        n if n >= 1 << 20 => (n as f64 / (1u64 << 20) as f64, "MiB"),
        n if n >= 1 << 10 => (n as f64 / 1024.0, "KiB"),
        n => return format!("{n} B"),
    };
    let v = format!("{v:.1}");
    format!("{} {unit}", v.strip_suffix(".0").unwrap_or(&v))
}

/// One step's output as stored.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    head: usize,
    /// The lines after the head still stored: (seq, time, bytes).
    tail: VecDeque<(u64, u64, usize)>,
    tail_bytes: usize,
    left_out: Option<LeftOut>,
}

/// What the store must do after a line was stored.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Trim {
    /// Lines to remove.
    pub(crate) remove: Vec<u64>,
    /// The line that says what is left out, to write (again) at its `seq`.
    pub(crate) left_out: Option<LeftOut>,
}

impl Kept {
    /// Takes line `seq` (stored at `at`, `len` bytes long) and says which earlier lines go.
    pub(crate) fn take(&mut self, seq: u64, at: u64, len: usize) -> Trim {
        if self.left_out.is_none() && self.tail.is_empty() && self.head + len <= HEAD {
            self.head += len;
            return Trim::default();
        }
        self.tail.push_back((seq, at, len));
        self.tail_bytes += len;
        let mut trim = Trim::default();
        // The newest line always stays, however long it is.
        while self.tail_bytes > TAIL && self.tail.len() > 1 {
            let (s, t, n) = self.tail.pop_front().expect("more than one");
            self.tail_bytes -= n;
            match &mut self.left_out {
                None => self.left_out = Some(LeftOut { seq: s, at: t, lines: 1, bytes: n as u64 }),
                Some(l) => {
                    l.lines += 1;
                    l.bytes += n as u64;
                    trim.remove.push(s);
                }
            }
            trim.left_out = self.left_out;
        }
        trim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_until_the_head_and_tail_are_full() {
        let mut k = Kept::default();
        let mut seq = 0;
        let mut line = |k: &mut Kept| {
            seq += 1;
            k.take(seq, seq * 10, 1024)
        };
        for _ in 0..(HEAD + TAIL) / 1024 {
            assert_eq!(line(&mut k), Trim::default());
        }
        // One more: the first line after the head becomes the note of what is left out.
        let first_tail = (HEAD / 1024) as u64 + 1;
        let t = line(&mut k);
        assert_eq!(t.remove, Vec::<u64>::new());
        assert_eq!(t.left_out, Some(LeftOut { seq: first_tail, at: first_tail * 10, lines: 1, bytes: 1024 }));
        // Then each new line removes the oldest of the tail, and the note counts it.
        let t = line(&mut k);
        assert_eq!(t.remove, vec![first_tail + 1]);
        assert_eq!(t.left_out.map(|l| (l.seq, l.lines, l.bytes)), Some((first_tail, 2, 2048)));
    }

    #[test]
    fn a_line_longer_than_the_tail_is_kept_alone() {
        let mut k = Kept::default();
        assert_eq!(k.take(1, 0, HEAD + 1), Trim::default());
        assert_eq!(
            k.take(2, 0, TAIL * 2),
            Trim { remove: vec![], left_out: Some(LeftOut { seq: 1, at: 0, lines: 1, bytes: HEAD as u64 + 1 }) }
        );
        let t = k.take(3, 0, 10);
        assert_eq!(t.remove, vec![2]);
        assert_eq!(t.left_out.map(|l| l.lines), Some(2));
    }

    #[test]
    fn says_how_much_in_words() {
        let l = LeftOut { seq: 0, at: 0, lines: 3, bytes: 3 << 20 };
        assert!(l.text().contains("3 line(s) (3 MiB)"), "{}", l.text());
        assert!(l.text().contains("first 256 KiB and the last 1 MiB"), "{}", l.text());
    }
}
