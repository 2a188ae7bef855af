//! The last N bytes of a stream, kept without holding the whole stream.

use std::collections::VecDeque;

/// A bounded tail of bytes; remembers how much was dropped.
#[derive(Debug)]
pub(crate) struct Tail {
    buf: VecDeque<u8>,
    cap: usize,
    dropped: u64,
}

impl Tail {
    pub(crate) fn new(cap: usize) -> Self {
        Tail { buf: VecDeque::new(), cap, dropped: 0 }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        if self.buf.len() > self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The kept text (lossy UTF-8), with a marker when the start was cut.
    pub(crate) fn text(&self) -> String {
        self.last(usize::MAX)
    }

    /// The last `cap` bytes of the kept text (cut at a character boundary), with a marker
    /// saying how many earlier bytes are not shown.
    pub(crate) fn last(&self, cap: usize) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let mut start = bytes.len().saturating_sub(cap);
        while start < bytes.len() && (bytes[start] & 0xC0) == 0x80 {
            start += 1;
        }
        let hidden = self.dropped + start as u64;
        let s = String::from_utf8_lossy(&bytes[start..]).into_owned();
        if hidden > 0 { format!("[… {hidden} earlier bytes not kept]\n{s}") } else { s }
    }

    pub(crate) fn truncated(&self) -> bool {
        self.dropped > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_end() {
        let mut t = Tail::new(4);
        t.push(b"abc");
        t.push(b"defg");
        assert!(t.truncated());
        assert_eq!(t.text(), "[… 3 earlier bytes not kept]\ndefg");
        assert_eq!(t.last(2), "[… 5 earlier bytes not kept]\nfg");
        let mut u = Tail::new(16);
        u.push("aé".as_bytes());
        assert_eq!(u.last(1), "[… 3 earlier bytes not kept]\n");
    }
}
