//! The Chrome DevTools Protocol over a minimal WebSocket client (RFC 6455, std only): the
//! upgrade handshake, masked client text frames, and server frames of any length (7-bit,
//! 16-bit and 64-bit), fragmented into continuation frames or not, with pings answered.
//! Enough to drive one page from a test on loopback; not a general client.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

/// One WebSocket connection, client side.
pub(crate) struct WebSocket {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    masks: u32,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl WebSocket {
    /// Connects to `ws://HOST:PORT/PATH` and upgrades.
    pub(crate) fn connect(url: &str) -> io::Result<WebSocket> {
        let rest = url.strip_prefix("ws://").ok_or_else(|| bad(format!("not a ws:// URL: {url}")))?;
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
        let stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        let mut writer = stream.try_clone()?;
        // The key is a nonce that proves the server speaks WebSocket, not a secret; the
        // server's answer (Sec-WebSocket-Accept) is not checked: this is a loopback test.
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: cGhvZW5peC10ZXN0LWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        writer.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status)?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(bad(format!("the upgrade was refused: {}", status.trim())));
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(bad("the connection closed during the handshake"));
            }
            if line == "\r\n" {
                break;
            }
        }
        Ok(WebSocket { reader, writer, masks: std::process::id() })
    }

    /// A client frame: FIN set, masked, with the shortest length encoding.
    fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            frame.push(0x80 | 126);
            frame.extend((len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend((len as u64).to_be_bytes());
        }
        // Masking keeps proxies from mistaking frames for HTTP; any varying key will do here.
        self.masks = self.masks.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let mask = self.masks.to_be_bytes();
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.writer.write_all(&frame)
    }

    /// Sends one text message.
    pub(crate) fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send_frame(0x1, text.as_bytes())
    }

    /// The next text (or binary) message, its fragments joined; pings are answered.
    pub(crate) fn recv(&mut self) -> io::Result<String> {
        let mut message: Vec<u8> = Vec::new();
        let mut in_message = false;
        loop {
            let mut head = [0u8; 2];
            self.reader.read_exact(&mut head)?;
            let fin = head[0] & 0x80 != 0;
            let opcode = head[0] & 0x0F;
            let masked = head[1] & 0x80 != 0;
            let len = match head[1] & 0x7F {
                126 => {
                    let mut b = [0u8; 2];
                    self.reader.read_exact(&mut b)?;
                    u64::from(u16::from_be_bytes(b))
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.reader.read_exact(&mut b)?;
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let mask = if masked {
                let mut m = [0u8; 4];
                self.reader.read_exact(&mut m)?;
                Some(m)
            } else {
                None
            };
            let mut payload = vec![0u8; usize::try_from(len).map_err(|_| bad("a frame too long for memory"))?];
            self.reader.read_exact(&mut payload)?;
            if let Some(m) = mask {
                payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= m[i % 4]);
            }
            match opcode {
                0x1 | 0x2 => {
                    message = payload;
                    in_message = true;
                }
                0x0 if in_message => message.extend(payload),
                0x0 => return Err(bad("a continuation frame without a first frame")),
                0x8 => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the browser closed the connection")),
                0x9 => {
                    self.send_frame(0xA, &payload)?;
                    continue;
                }
                0xA => continue,
                other => return Err(bad(format!("unknown opcode {other:#x}"))),
            }
            if fin {
                return String::from_utf8(message).map_err(|_| bad("a text message that is not UTF-8"));
            }
        }
    }

    /// Says goodbye (best effort).
    pub(crate) fn close(&mut self) {
        let _ = self.send_frame(0x8, &1000u16.to_be_bytes());
    }
}

/// A DevTools session with one target: commands and their results; of the events, uncaught
/// exceptions are kept (a page that throws fails its test), the others are dropped.
pub(crate) struct Cdp {
    ws: WebSocket,
    next: u64,
    /// `Runtime.exceptionThrown` events seen so far, as text.
    pub(crate) exceptions: Vec<String>,
}

impl Cdp {
    pub(crate) fn connect(url: &str) -> io::Result<Cdp> {
        Ok(Cdp { ws: WebSocket::connect(url)?, next: 0, exceptions: Vec::new() })
    }

    /// Sends a command and waits for its result (an error result is an `Err`).
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        let text = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send_text(&text).map_err(|e| format!("{method}: {e}"))?;
        loop {
            let reply = self.ws.recv().map_err(|e| format!("{method}: {e}"))?;
            let v: Value = serde_json::from_str(&reply).map_err(|e| format!("{method}: not JSON ({e}): {reply}"))?;
            if v["method"] == "Runtime.exceptionThrown" {
                let d = &v["params"]["exceptionDetails"];
                let what = d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or("?");
                self.exceptions.push(format!("{what} at {}:{}", d["url"].as_str().unwrap_or("?"), d["lineNumber"]));
            }
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(format!("{method}: {e}")),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    pub(crate) fn close(&mut self) {
        self.ws.close();
    }
}

/// `GET http://ADDR/PATH`'s body (for DevTools' /json endpoints). Chromium keeps the
/// connection open whatever the request says, so the body is read by its Content-Length.
pub(crate) fn http_get(addr: &str, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(bad(format!("GET {path}: {}", status.trim())));
    }
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or_else(|| bad(format!("GET {path}: no Content-Length")))?;
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    String::from_utf8(body).map_err(|_| bad(format!("GET {path}: not UTF-8")))
}

/// Standard base64 (with padding) decoded, for screenshots.
pub(crate) fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let sextets: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &s)| acc | (u32::from(s) << (18 - 6 * i)));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_with_and_without_padding() {
    assert_eq!(base64_decode("cGhvZW5peC10ZXN0LWtleQ=="), b"phoenix-test-key");
    assert_eq!(base64_decode("YWJj"), b"abc");
    assert_eq!(base64_decode("YWI="), b"ab");
    assert_eq!(base64_decode(""), b"");
}
