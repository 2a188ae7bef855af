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
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let s = String::from_utf8_lossy(&bytes).into_owned();
        if self.dropped > 0 { format!("[… {} earlier bytes not kept]\n{s}", self.dropped) } else { s }
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
    }
}
