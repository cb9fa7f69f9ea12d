//! The output file and its commit log: atomic, durable appends of one record
//! group (the new batches of one request) at a time, and recovery on open.
//!
//! `events.jsonl` holds only event lines (what `turnout decode` prints), so
//! where the last complete group ends is recorded beside it, in
//! `events.jsonl.commit`: one line per append, `c <length> <crc32c>`, the
//! length of the output file once the group is on disk. An append writes the
//! group at the committed length, `fsync`s the output file, then appends and
//! `fsync`s the new length; only then is the request acknowledged and its keys
//! recorded as seen. On open, everything past the last valid record (a group
//! cut by a crash, never acknowledged) is truncated away, so restart always
//! works and the client's retry is written again.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use turnout_core::tracking::checksum;

/// The commit log is rewritten as one record when it grows past this.
const COMPACT_LOG_BYTES: u64 = 1 << 20;

/// Keys already written: client id -> seqs (SipHash: client ids come from the network).
pub(crate) type Seen = HashMap<String, HashSet<u64>>;

pub(crate) struct Store {
    path: PathBuf,
    log_path: PathBuf,
    data: File,
    log: File,
    /// Length of the output file up to the end of the last durable group.
    committed: u64,
    log_len: u64,
    /// A failed append may have left bytes past `committed` (in the output,
    /// or a record in the commit log): both are reset before the next one.
    dirty: bool,
}

/// What [`Store::open`] found.
pub(crate) struct Opened {
    pub store: Store,
    pub seen: Seen,
    /// A line for the operator when something was repaired.
    pub recovery: Option<String>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// `events.jsonl` -> `events.jsonl.commit`.
pub fn commit_log_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".commit");
    out.with_file_name(name)
}

fn record(len: u64) -> String {
    let n = len.to_string();
    format!("c {n} {:08x}\n", checksum(n.as_bytes()))
}

/// The last valid record of a commit log (a torn or garbled tail is ignored:
/// that append was never acknowledged).
fn last_committed(bytes: &[u8]) -> Option<u64> {
    let mut last = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else { break };
        let Ok(line) = std::str::from_utf8(line) else { continue };
        let mut parts = line.split(' ');
        if let (Some("c"), Some(n), Some(crc), None) = (parts.next(), parts.next(), parts.next(), parts.next()) {
            if format!("{:08x}", checksum(n.as_bytes())) == crc {
                if let Ok(n) = n.parse() {
                    last = Some(n);
                }
            }
        }
    }
    last
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Replaces the commit log with a single record (write, fsync, rename).
fn write_log(log_path: &Path, committed: u64) -> io::Result<File> {
    let mut tmp_name = log_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = log_path.with_file_name(tmp_name);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(record(committed).as_bytes())?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, log_path)?;
    sync_dir(log_path)?;
    OpenOptions::new().append(true).open(log_path)
}

/// The fields of an output line that de-duplication needs.
#[derive(Deserialize)]
struct Key {
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    seq: Option<u64>,
}

enum Line {
    Key(Option<(String, u64)>),
    NotJson(String),
}

fn parse_line(line: &[u8]) -> Line {
    match serde_json::from_slice::<Key>(line) {
        Ok(Key { client_id: Some(c), seq: Some(s) }) => Line::Key(Some((c, s))),
        Ok(_) => Line::Key(None),
        // Not an object with those fields: still fine if it is JSON.
        Err(e) => match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) => Line::Key(None),
            Err(_) => Line::NotJson(e.to_string()),
        },
    }
}

impl Store {
    /// Opens or creates `path`, repairs a tail left by a crash, and loads the
    /// keys already written (one pass, hash set inserts: linear in the file).
    pub fn open(path: &Path, truncate: bool) -> Result<Opened, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        }
        let log_path = commit_log_path(path);
        let existed = path.exists();
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .open(path)
            .map_err(|e| err(path, e))?;
        if !existed || truncate {
            data.sync_all().map_err(|e| err(path, e))?;
            sync_dir(path).map_err(|e| err(path, e))?;
        }
        let len = data.metadata().map_err(|e| err(path, e))?.len();
        let committed = if truncate || !log_path.exists() {
            None
        } else {
            let bytes = std::fs::read(&log_path).map_err(|e| err(&log_path, e))?;
            last_committed(&bytes)
        };
        let mut notes = Vec::new();
        let mut seen = Seen::new();
        // Only the committed part counts: past it is a group cut by a crash.
        let scan_to = match committed {
            Some(c) if c <= len => {
                if len > c {
                    notes.push(format!(
                        "removed {} bytes after the last committed append (a crash during a write; those \
                         batches were never acknowledged, their clients send them again)",
                        len - c
                    ));
                }
                c
            }
            Some(c) => {
                notes.push(format!("the commit log says {c} bytes but the file has {len}: checked line by line"));
                len
            }
            // A file from an older collector, or the commit log was deleted.
            None => len,
        };
        // A torn last line (what a crash leaves without a commit log) is cut.
        let end = scan(path, &data, scan_to, &mut seen)?;
        if end < scan_to {
            notes.push(format!("removed an incomplete last line of {} bytes (a write cut by a crash)", scan_to - end));
        }
        let recovery = if notes.is_empty() { None } else { Some(format!("{}: {}", path.display(), notes.join("; "))) };
        if end < len {
            data.set_len(end).map_err(|e| err(path, e))?;
            data.sync_all().map_err(|e| err(path, e))?;
        }
        let end = ensure_final_newline(path, &data, end)?;
        let log = write_log(&log_path, end).map_err(|e| err(&log_path, e))?;
        let log_len = record(end).len() as u64;
        Ok(Opened {
            store: Store { path: path.to_path_buf(), log_path, data, log, committed: end, log_len, dirty: false },
            seen,
            recovery,
        })
    }

    /// Appends one record group written by `fill` and makes it durable:
    /// the group is acknowledged-safe once this returns `Ok`. On error,
    /// nothing of it counts (it is cut off now, or on the next open).
    pub fn append(&mut self, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<u64> {
        let result = self.try_append(fill);
        if result.is_err() {
            // Whatever reached the files past `committed` is not committed:
            // reset them now (or before the next append) so that the next
            // group starts at `committed` and no record names this one.
            self.dirty = true;
            let _ = self.reset();
        }
        result
    }

    fn reset(&mut self) -> io::Result<()> {
        self.data.set_len(self.committed)?;
        self.log = write_log(&self.log_path, self.committed)?;
        self.log_len = record(self.committed).len() as u64;
        self.dirty = false;
        Ok(())
    }

    fn try_append(&mut self, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<u64> {
        if self.dirty {
            self.reset()?;
        }
        let start = self.committed;
        (&self.data).seek(SeekFrom::Start(start))?;
        let mut w = BufWriter::with_capacity(1 << 20, &self.data);
        fill(&mut w)?;
        w.flush()?;
        drop(w);
        let end = (&self.data).stream_position()?;
        if end == start {
            return Ok(0);
        }
        self.data.sync_data()?;
        if self.log_len >= COMPACT_LOG_BYTES {
            self.log = write_log(&self.log_path, end)?;
            self.log_len = record(end).len() as u64;
        } else {
            let r = record(end);
            self.log.write_all(r.as_bytes())?;
            self.log.sync_data()?;
            self.log_len += r.len() as u64;
        }
        self.committed = end;
        Ok(end - start)
    }

    /// The output file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the lines of `path` up to `end`, loading keys, and returns where the
/// valid part ends. Every complete line must be JSON (or blank). A last line
/// without its newline that is not JSON but starts like one of ours (`{`) is a
/// line torn by a crash: it is left out. Anything else invalid is an error: not
/// what a crash leaves, and not ours to cut.
fn scan(path: &Path, data: &File, end: u64, seen: &mut Seen) -> Result<u64, String> {
    let mut file = data;
    file.seek(SeekFrom::Start(0)).map_err(|e| err(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file.take(end));
    let mut buf = Vec::new();
    let (mut pos, mut line_no) = (0u64, 0usize);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| err(path, e))?;
        if n == 0 {
            return Ok(pos);
        }
        line_no += 1;
        let (text, complete) = match buf.strip_suffix(b"\n") {
            Some(text) => (text, true),
            None => (&buf[..], false),
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            // Blank lines are neither keys nor damage (a blank unfinished one is dropped).
            if complete {
                pos += n as u64;
            }
            continue;
        }
        match parse_line(text) {
            Line::Key(key) => {
                if let Some((client, seq)) = key {
                    seen.entry(client).or_default().insert(seq);
                }
                pos += n as u64;
            }
            Line::NotJson(_) if !complete && text.starts_with(b"{") => return Ok(pos),
            Line::NotJson(e) => return Err(not_json(path, line_no, &e)),
        }
    }
}

fn not_json(path: &Path, line: usize, e: &str) -> String {
    format!(
        "{} line {line}: not JSON ({e}); is it a collector output file? Use another --out or --truncate",
        path.display()
    )
}

/// A kept last line without its newline (a file not written by the collector)
/// gets one, so the next group starts on a line of its own.
fn ensure_final_newline(path: &Path, data: &File, end: u64) -> Result<u64, String> {
    if end == 0 {
        return Ok(0);
    }
    let mut file = data;
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(end - 1)).and_then(|_| file.read_exact(&mut last)).map_err(|e| err(path, e))?;
    if last[0] == b'\n' {
        return Ok(end);
    }
    file.seek(SeekFrom::Start(end))
        .and_then(|_| file.write_all(b"\n"))
        .and_then(|()| data.sync_data())
        .map_err(|e| err(path, e))?;
    Ok(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_records_round_trip_and_torn_tails_are_ignored() {
        let mut log = record(0) + &record(120) + &record(4567);
        assert_eq!(last_committed(log.as_bytes()), Some(4567));
        log.push_str("c 99");
        assert_eq!(last_committed(log.as_bytes()), Some(4567));
        let garbled = record(4567).replace("4567", "4568");
        assert_eq!(last_committed(format!("{}{garbled}", record(1)).as_bytes()), Some(1));
        assert_eq!(last_committed(b"\0\0\0\0\n"), None);
    }

    #[test]
    fn commit_log_sits_beside_the_output() {
        assert_eq!(commit_log_path(Path::new("/tmp/x/events.jsonl")), Path::new("/tmp/x/events.jsonl.commit"));
        assert_eq!(commit_log_path(Path::new("events.jsonl")), Path::new("events.jsonl.commit"));
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("turnout-collector-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    fn line(client: &str, seq: u64) -> String {
        format!("{{\"clientId\":\"{client}\",\"seq\":{seq},\"kind\":\"track\"}}\n")
    }

    fn append(store: &mut Store, text: &str) {
        store.append(|w| w.write_all(text.as_bytes())).expect("append");
    }

    #[test]
    fn a_group_past_the_committed_length_is_removed_on_open() {
        let out = dir("torn").join("events.jsonl");
        let mut opened = Store::open(&out, false).expect("open");
        assert!(opened.seen.is_empty() && opened.recovery.is_none());
        append(&mut opened.store, &(line("a", 1) + &line("a", 1)));
        drop(opened);
        let committed = std::fs::metadata(&out).expect("out").len();
        // A crash in the middle of the next group: whole lines and a torn one.
        let mut f = OpenOptions::new().append(true).open(&out).expect("out");
        f.write_all((line("b", 7) + &line("b", 7) + "{\"clientId\":\"b\",\"se").as_bytes()).expect("write");
        drop(f);
        let opened = Store::open(&out, false).expect("restart works");
        assert!(opened.recovery.as_deref().is_some_and(|r| r.contains("after the last committed append")));
        assert_eq!(std::fs::metadata(&out).expect("out").len(), committed);
        // b's batch was never committed: not seen, so its retry is written.
        assert!(opened.seen["a"].contains(&1));
        assert!(!opened.seen.contains_key("b"));
    }

    #[test]
    fn without_a_commit_log_only_a_torn_last_line_is_cut() {
        let d = dir("legacy");
        let out = d.join("events.jsonl");
        std::fs::write(&out, line("a", 1) + &line("a", 2) + "{\"clientId\":\"a\",\"seq\":3,\"ki").expect("write");
        let opened = Store::open(&out, false).expect("open");
        assert!(opened.recovery.is_some());
        assert_eq!(std::fs::read_to_string(&out).expect("out"), line("a", 1) + &line("a", 2));
        assert_eq!(opened.seen["a"].len(), 2);
        drop(opened);

        // A complete line that is not JSON is not crash damage: refused, file untouched.
        let other = d.join("notes.txt");
        std::fs::write(&other, "hello\n").expect("write");
        let e = Store::open(&other, false).err().expect("refused");
        assert!(e.contains("line 1: not JSON"), "{e}");
        assert_eq!(std::fs::read_to_string(&other).expect("notes"), "hello\n");
        // Nor is an unfinished last line that does not start like ours.
        std::fs::write(&other, line("a", 1) + "hello").expect("write");
        assert!(Store::open(&other, false).is_err());
        // A JSON last line without its newline is kept (and given one).
        std::fs::write(&other, line("a", 1) + line("a", 2).trim_end()).expect("write");
        let opened = Store::open(&other, false).expect("open");
        assert_eq!(opened.seen["a"].len(), 2);
        assert_eq!(std::fs::read_to_string(&other).expect("notes"), line("a", 1) + &line("a", 2));
    }

    #[test]
    fn a_failed_append_leaves_nothing_behind() {
        let out = dir("failed").join("events.jsonl");
        let mut store = Store::open(&out, false).expect("open").store;
        append(&mut store, &line("a", 1));
        let e = store.append(|w| {
            w.write_all(line("a", 2).as_bytes())?;
            Err(io::Error::other("disk full"))
        });
        assert!(e.is_err());
        append(&mut store, &line("a", 3));
        drop(store);
        assert_eq!(std::fs::read_to_string(&out).expect("out"), line("a", 1) + &line("a", 3));
        let opened = Store::open(&out, false).expect("open");
        assert!(opened.recovery.is_none());
        assert_eq!(opened.seen["a"], [1, 3].into_iter().collect());
    }

    #[test]
    fn the_commit_log_is_compacted() {
        let out = dir("compact").join("events.jsonl");
        let mut store = Store::open(&out, false).expect("open").store;
        store.log_len = COMPACT_LOG_BYTES;
        append(&mut store, &line("a", 1));
        let log = std::fs::read_to_string(commit_log_path(&out)).expect("log");
        assert_eq!(log, record(line("a", 1).len() as u64));
        append(&mut store, &line("a", 2));
        assert_eq!(std::fs::read_to_string(commit_log_path(&out)).expect("log").lines().count(), 2);
    }
}
