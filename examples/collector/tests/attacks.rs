//! The collector under attack: each test runs the real binary, attacks it the
//! way an adversarial run did, and checks that ordinary requests are still
//! served promptly, with bounded threads, and that no acknowledged batch is
//! lost. Measurements are printed (`cargo test -p turnout-collector --test
//! attacks -- --nocapture`); docs/benchmarks.md records them.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{batch_stream, client_with_events, lines, proc_status, request, temp, Server};
use serde_json::Value;

const POST_HEAD: &str = "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n";

/// A normal batch posted on a fresh connection: (status, time taken).
fn normal_post(server: &Server, client_id: &str) -> (u16, Duration) {
    let batch = client_with_events(client_id, 2).take_batch(1000).expect("batch");
    let t0 = Instant::now();
    let (status, reply) = server.post(&batch.bytes);
    let took = t0.elapsed();
    assert_eq!(reply["batches"][0]["duplicate"], false, "{reply}");
    (status, took)
}

fn report(what: &str, server: &Server, served_in: Duration) {
    println!(
        "[measure] {what}: normal request served in {:.1} ms; threads {}; RSS {} MiB",
        served_in.as_secs_f64() * 1e3,
        proc_status(server.pid(), "Threads").unwrap_or(0),
        proc_status(server.pid(), "VmRSS").unwrap_or(0) / 1024
    );
}

/// Sends `head`, then reads until the collector closes: (response bytes, time to close).
fn send_and_read_all(addr: &str, head: &[u8]) -> (Vec<u8>, Duration) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let t0 = Instant::now();
    s.write_all(head).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("the collector answers and closes");
    (raw, t0.elapsed())
}

#[test]
fn a_huge_declared_content_length_is_refused_unread_and_the_collector_keeps_serving() {
    let dir = temp("huge");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &[]);
    let huge = format!("{POST_HEAD}Content-Length: 1000000000000000000\r\n\r\n");

    // Declared 10^18 bytes, a few sent: 413 at once, then the connection is closed.
    let (raw, took) = send_and_read_all(&server.addr, format!("{huge}abc").as_bytes());
    let (status, headers, body) = common::parse_response(&raw).expect("a response");
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains("connection: close"), "{headers}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // With Expect: 100-continue: no `100 Continue`, the 413 directly.
    let (raw, _) = send_and_read_all(
        &server.addr,
        format!("{POST_HEAD}Expect: 100-continue\r\nContent-Length: 1000000000000000000\r\n\r\n").as_bytes(),
    );
    assert!(raw.starts_with(b"HTTP/1.1 413"), "{}", String::from_utf8_lossy(&raw));

    // A client that keeps sending the declared body still reads its 413.
    let mut s = TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    s.write_all(huge.as_bytes()).expect("head");
    let mut writer = s.try_clone().expect("clone");
    let blaster = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0usize;
        while sent < 64 << 20 {
            match writer.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // closed by the collector
            }
        }
        sent
    });
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).expect("an answer while the body is being sent");
    assert_eq!(&answer, b"HTTP/1.1 413");
    let sent = blaster.join().expect("blaster");
    assert!(sent < 64 << 20, "the collector closed the connection instead of reading {sent} bytes");

    // A chunked body over the limit (no length declared): 413 once the limit is passed.
    let small = Server::start(&dir.join("small.jsonl"), &["--max-body-bytes", "1000"]);
    let mut chunked = format!("{POST_HEAD}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'y'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    let (raw, _) = send_and_read_all(&small.addr, &chunked);
    assert!(raw.starts_with(b"HTTP/1.1 413"), "{}", String::from_utf8_lossy(&raw));

    // Still serving.
    let (status, took) = normal_post(&server, "client-after-huge");
    assert_eq!(status, 200);
    report("after 10^18-byte Content-Length and a 64 MiB blast", &server, took);
    assert_eq!(server.stats()["rejected"], 3);
    assert_eq!(lines(&out).len(), 3);
    let rss_mib = proc_status(server.pid(), "VmRSS").unwrap_or(0) / 1024;
    assert!(rss_mib < 200, "RSS {rss_mib} MiB");
}

#[test]
fn slow_body_clients_do_not_stop_others_and_are_cut_off_by_the_body_timeout() {
    let dir = temp("slow-body");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &["--body-timeout", "2", "--workers", "2"]);
    let start = Instant::now();
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
                s.write_all(format!("{POST_HEAD}Content-Length: 1000\r\n\r\n").as_bytes()).expect("head");
                let t0 = Instant::now();
                let mut raw = Vec::new();
                // A byte every 500 ms, reading whatever comes back, until closed.
                loop {
                    let _ = s.write_all(b"z");
                    let mut buf = [0u8; 4096];
                    let until = Instant::now() + Duration::from_millis(500);
                    while Instant::now() < until {
                        match s.read(&mut buf) {
                            Ok(0) => return (raw, t0.elapsed()),
                            Ok(n) => raw.extend_from_slice(&buf[..n]),
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => return (raw, t0.elapsed()),
                        }
                    }
                    assert!(t0.elapsed() < Duration::from_secs(20), "never cut off");
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = normal_post(&server, "client-beside-slow-bodies");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "{took:?}");
    report("8 slow-body clients (1 byte / 500 ms)", &server, took);
    for t in slow {
        let (raw, lasted) = t.join().expect("slow client");
        assert!(raw.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&raw));
        assert!(lasted > Duration::from_millis(1500) && lasted < Duration::from_secs(5), "{lasted:?}");
    }
    println!("[measure] slow bodies cut off (408) after {:.1} s", start.elapsed().as_secs_f64());
    let stats = server.stats();
    assert_eq!(stats["timeouts"], 8);
    assert_eq!(stats["rejected"], 8);
    assert_eq!(lines(&out).len(), 3);
}

#[test]
fn a_thousand_slow_header_connections_cost_no_threads_and_are_closed() {
    let dir = temp("slow-head");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &["--header-timeout", "3"]);
    let idle_threads = proc_status(server.pid(), "Threads").unwrap_or(0);
    let t0 = Instant::now();
    let mut slow: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).expect("connect");
            s.write_all(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Ty").expect("part of a head");
            s
        })
        .collect();
    // Every one accepted and waiting for the rest of its head.
    while server.stats()["openConnections"].as_u64().unwrap_or(0) < 1000 {
        assert!(t0.elapsed() < Duration::from_secs(3), "{}", server.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, took) = normal_post(&server, "client-beside-slow-heads");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let threads = proc_status(server.pid(), "Threads").unwrap_or(0);
    report("1,000 slow header-only connections", &server, took);
    assert!(threads <= 16, "{threads} threads (idle: {idle_threads})");
    // Cut off by the header timeout, every one of them.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    let closed_after = t0.elapsed();
    assert!(closed_after < Duration::from_secs(8), "{closed_after:?}");
    println!("[measure] 1,000 slow heads closed after {:.1} s", closed_after.as_secs_f64());
    assert_eq!(server.stats()["timeouts"], 1000);
    // (A closed socket is counted out a moment after the client sees it close.)
    let t1 = Instant::now();
    while server.stats()["openConnections"] != 1 {
        assert!(t1.elapsed() < Duration::from_secs(2), "{}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }

    // Over --max-connections: the rest wait in the accept backlog and are served in turn.
    let capped = Server::start(&dir.join("capped.jsonl"), &["--max-connections", "50", "--header-timeout", "1"]);
    let _slow: Vec<TcpStream> = (0..80)
        .map(|_| {
            let mut s = TcpStream::connect(&capped.addr).expect("connect (backlog)");
            let _ = s.write_all(b"GET /stats HTTP/1.1\r\n");
            s
        })
        .collect();
    let t0 = Instant::now();
    let (status, _, _) = capped.request("GET", "/stats", &[], b"");
    let waited = t0.elapsed();
    assert_eq!(status, 200);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    println!(
        "[measure] 80 slow heads against --max-connections 50: a normal request waited {:.1} s",
        waited.as_secs_f64()
    );
}

#[test]
fn a_hundred_thousand_tiny_batches_take_linear_time_while_stats_answer() {
    let dir = temp("tiny");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &[]);
    let (small, small_keys) = batch_stream("client-10k", 10_000, 1);
    let (large, large_keys) = batch_stream("client-100k", 100_000, 1);
    println!("[measure] 100,000 tiny batches: a {:.1} MB body", large.len() as f64 / 1e6);

    let t0 = Instant::now();
    let (status, reply) = server.post(&small);
    let t_small = t0.elapsed();
    assert_eq!(status, 200);
    assert_eq!(reply["batches"].as_array().map(Vec::len), Some(small_keys.len()));

    // GET /stats from another connection all along.
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (addr, done) = (server.addr.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut polls = 0;
            while !done.load(Ordering::SeqCst) {
                let t = Instant::now();
                let (status, _, _) = request(&addr, "GET", "/stats", &[], b"").expect("stats");
                assert_eq!(status, 200);
                worst = worst.max(t.elapsed());
                polls += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (worst, polls)
        })
    };
    // And a new batch from another client, posted while the large body is in progress.
    let writer = {
        let addr = server.addr.clone();
        let batch = client_with_events("client-meanwhile", 2).take_batch(1000).expect("batch");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let t = Instant::now();
            let (status, _, _) =
                request(&addr, "POST", "/events", &[("Content-Type", "application/octet-stream")], &batch.bytes)
                    .expect("post");
            (status, t.elapsed())
        })
    };
    let t0 = Instant::now();
    let (status, reply) = server.post(&large);
    let t_large = t0.elapsed();
    done.store(true, Ordering::SeqCst);
    let (worst, polls) = poller.join().expect("poller");
    let (other_status, other_took) = writer.join().expect("writer");
    assert_eq!(other_status, 200);
    assert_eq!(status, 200);
    let acks = reply["batches"].as_array().expect("acks");
    assert_eq!(acks.len(), large_keys.len());
    assert!(acks.iter().all(|a| a["duplicate"] == false));
    println!(
        "[measure] 10,000 tiny batches {:.0} ms, 100,000 {:.0} ms (x{:.1}); GET /stats meanwhile: {polls} answers, slowest {:.1} ms",
        t_small.as_secs_f64() * 1e3,
        t_large.as_secs_f64() * 1e3,
        t_large.as_secs_f64() / t_small.as_secs_f64(),
        worst.as_secs_f64() * 1e3
    );
    println!(
        "[measure] a new batch posted meanwhile: {:.0} ms (it waits for the large append's writer lock at most)",
        other_took.as_secs_f64() * 1e3
    );
    // Linear: 10x the batches, about 10x the time (a quadratic lookup made it 100x).
    assert!(t_large < t_small * 30 + Duration::from_secs(2), "{t_small:?} then {t_large:?}");
    assert!(t_large < Duration::from_secs(60), "{t_large:?}");
    assert!(polls >= 1 && worst < Duration::from_secs(1), "slowest /stats {worst:?}");

    // The same body again: all duplicates, found by hash lookups.
    let t0 = Instant::now();
    let (status, reply) = server.post(&large);
    assert_eq!(status, 200);
    assert!(reply["batches"].as_array().expect("acks").iter().all(|a| a["duplicate"] == true));
    println!(
        "[measure] the 100,000 again (all duplicates): {:.0} ms; peak RSS {} MiB, threads {}",
        t0.elapsed().as_secs_f64() * 1e3,
        proc_status(server.pid(), "VmHWM").unwrap_or(0) / 1024,
        proc_status(server.pid(), "Threads").unwrap_or(0)
    );
    assert_eq!(lines(&out).len(), 110_003);
    let stats = server.stats();
    assert_eq!(stats["batches"], 110_001);
    assert_eq!(stats["duplicates"], 100_000);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines per (client, seq) in the output file; every line must be JSON (no torn line).
fn count_lines(out: &Path) -> HashMap<(String, u64), usize> {
    #[derive(serde::Deserialize)]
    struct Key {
        #[serde(rename = "clientId")]
        client_id: String,
        seq: u64,
    }
    let text = std::fs::read_to_string(out).expect("output");
    let mut counts = HashMap::new();
    for line in text.lines() {
        let key: Key =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {line:.200}"));
        *counts.entry((key.client_id, key.seq)).or_default() += 1;
    }
    counts
}

/// Each of `keys` has all its lines, once.
fn exactly_once(counts: &HashMap<(String, u64), usize>, client_id: &str, keys: &[(u64, usize)]) {
    for (seq, events) in keys {
        assert_eq!(counts.get(&(client_id.to_string(), *seq)).copied().unwrap_or(0), *events, "{client_id} seq {seq}");
    }
    assert_eq!(counts.keys().filter(|(c, _)| c == client_id).count(), keys.len(), "{client_id}");
}

#[test]
fn kill_9_during_large_appends_never_loses_an_acknowledged_batch_nor_leaves_a_torn_line() {
    let dir = temp("kill");
    let out = dir.join("events.jsonl");
    let (events_per_batch, batches) = (2_000, 20);

    // Round 0: acknowledged before any crash; must survive every later one.
    let (acked_body, acked_keys) = batch_stream("client-acked", batches, events_per_batch);
    let mut server = Server::start(&out, &[]);
    let t0 = Instant::now();
    let (status, _) = server.post(&acked_body);
    let full = t0.elapsed();
    assert_eq!(status, 200);
    println!(
        "[measure] a {:.1} MB body of {} events appended ({:.0} MB of JSON) in {:.0} ms",
        acked_body.len() as f64 / 1e6,
        batches * events_per_batch,
        std::fs::metadata(&out).expect("out").len() as f64 / 1e6,
        full.as_secs_f64() * 1e3
    );

    let mut seed = (std::process::id() as u64) ^ 0x9e37_79b9_7f4a_7c15;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut mid_append_kills = 0;
    for round in 1..=6 {
        let client_id = format!("client-round-{round}");
        let (body, keys) = batch_stream(&client_id, batches, events_per_batch);
        let before = std::fs::metadata(&out).expect("out").len();
        let poster = {
            let (addr, body) = (server.addr.clone(), body.clone());
            std::thread::spawn(move || {
                request(&addr, "POST", "/events", &[("Content-Type", "application/octet-stream")], &body).ok()
            })
        };
        // Odd rounds: kill -9 as soon as the append has started; even: at a random moment.
        let t0 = Instant::now();
        let delay = Duration::from_micros(random() % (full.as_micros() as u64 * 3 / 2 + 1));
        loop {
            let grown = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) > before;
            if (round % 2 == 1 && grown) || (round % 2 == 0 && t0.elapsed() >= delay) || poster.is_finished() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the append never started");
            std::thread::sleep(Duration::from_micros(200));
        }
        server.child.kill().expect("kill -9");
        server.child.wait().expect("reaped");
        let at_kill = std::fs::metadata(&out).expect("out").len();
        let answer = poster.join().expect("poster");
        let acknowledged = matches!(&answer, Some((200, _, _)));

        // Restart on the same file: always works, no torn line, round 0 intact.
        server = Server::start(&out, &[]);
        let recovered = std::fs::metadata(&out).expect("out").len();
        let counts = count_lines(&out);
        exactly_once(&counts, "client-acked", &acked_keys);
        if acknowledged {
            exactly_once(&counts, &client_id, &keys);
        }
        if at_kill > before && recovered == before {
            mid_append_kills += 1;
        }
        // The client's retry: written, unless it was already (then a duplicate, and present).
        let (status, reply) = server.post(&body);
        assert_eq!(status, 200, "{reply}");
        for (ack, (seq, _)) in reply["batches"].as_array().expect("acks").iter().zip(&keys) {
            let already = counts.contains_key(&(client_id.clone(), *seq));
            assert_eq!(ack["duplicate"], Value::Bool(already), "round {round} seq {seq}");
        }
        exactly_once(&count_lines(&out), &client_id, &keys);
        println!(
            "[measure] round {round}: killed {}: {} bytes of the group on disk, acknowledged: {acknowledged}, \
             restart kept {} bytes of it; the retry wrote {} of {} batches",
            if round % 2 == 1 { "as the append started".to_string() } else { format!("after {delay:?}") },
            at_kill.saturating_sub(before),
            recovered - before,
            reply["batches"].as_array().map_or(0, |a| a.iter().filter(|b| b["duplicate"] == false).count()),
            keys.len()
        );
    }
    assert!(mid_append_kills >= 1, "no kill landed in the middle of an append");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
