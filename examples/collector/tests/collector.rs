//! The collector binary on an ephemeral port: acks, de-duplication, refusals,
//! the config endpoint's ETag / 304, restarts on the same output file.

mod common;

use common::{client_with_events, example_config, lines, temp, Server};
use turnout_core::tracking::append_to_stream;

#[test]
fn batches_are_acked_written_once_and_decoded_like_turnout_decode() {
    let dir = temp("dedup");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &[]);
    let client = client_with_events("client-a", 5);
    let batch = client.take_batch(1000).expect("a batch");
    assert_eq!(batch.events, 6);

    let (status, reply) = server.post(&batch.bytes);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["batches"][0]["clientId"], "client-a");
    assert_eq!(reply["batches"][0]["seq"], batch.seq);
    assert_eq!(reply["batches"][0]["duplicate"], false);
    let written = lines(&out);
    assert_eq!(written.len(), 6);
    // Header fields on every line, then the event's own fields.
    let decoded = turnout_core::decode_batch(&batch.bytes).expect("decodes");
    for (line, event) in written.iter().zip(&decoded.events) {
        assert_eq!(line["clientId"], "client-a");
        assert_eq!(line["seq"], batch.seq);
        assert_eq!(line["sdk"], decoded.header.sdk.as_str());
        for (k, v) in event.to_json().as_object().expect("event object") {
            assert_eq!(&line[k], v, "field {k}");
        }
    }
    assert_eq!(written.last().map(|l| l["kind"].clone()), Some("track".into()));

    // The SDK did not see the ack and retries the same bytes: acked, not written twice.
    let (status, reply) = server.post(&batch.bytes);
    assert_eq!(status, 200);
    assert_eq!(reply["batches"][0]["duplicate"], true);
    assert_eq!(lines(&out).len(), 6);

    // Another client with the same seq is not a duplicate.
    let other = client_with_events("client-b", 1).take_batch(1000).expect("batch");
    assert_eq!(server.post(&other.bytes).0, 200);
    assert_eq!(lines(&out).len(), 8);

    let stats = server.stats();
    assert_eq!(stats["batches"], 2);
    assert_eq!(stats["duplicates"], 1);
    assert_eq!(stats["events"], 8);
    assert_eq!(stats["clients"], 2);
    assert_eq!(stats["rejected"], 0);
}

#[test]
fn corrupted_and_foreign_bodies_are_refused_with_400_and_nothing_is_written() {
    let dir = temp("corrupt");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &[]);
    let batch = client_with_events("client-c", 3).take_batch(1000).expect("batch");

    let mut flipped = batch.bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let (status, reply) = server.post(&flipped);
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap_or("").contains("checksum"), "{reply}");

    let (status, reply) = server.post(b"{\"not\": \"a batch\"}");
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap_or("").contains("not a turnout batch"), "{reply}");

    let (status, reply) = server.post(b"");
    assert_eq!(status, 400, "{reply}");

    let (status, _, body) = server.request("POST", "/events", &[("Content-Type", "application/json")], b"{}");
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&body));

    // A stream with one good and one corrupted batch is refused whole.
    let mut stream = Vec::new();
    append_to_stream(&mut stream, &batch.bytes);
    append_to_stream(&mut stream, &flipped);
    let (status, reply) = server.post(&stream);
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap_or("").contains("batch 1 of 2"), "{reply}");

    assert!(lines(&out).is_empty(), "nothing of a refused body is written");
    assert_eq!(server.stats()["rejected"], 5);

    // The good batch alone still goes through afterwards.
    assert_eq!(server.post(&batch.bytes).0, 200);
    assert_eq!(lines(&out).len(), 4);
}

#[test]
fn batch_streams_are_accepted_batch_by_batch() {
    let dir = temp("stream");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &[]);
    let client = client_with_events("client-s", 4);
    let first = client.take_batch(2).expect("first");
    let second = client.take_batch(1000).expect("second");
    let mut stream = Vec::new();
    append_to_stream(&mut stream, &first.bytes);
    append_to_stream(&mut stream, &second.bytes);
    let (status, reply) = server.post(&stream);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["batches"].as_array().map(Vec::len), Some(2));
    assert_eq!(lines(&out).len(), first.events + second.events);
    // Re-sending the first batch alone is a duplicate.
    assert_eq!(server.post(&first.bytes).1["batches"][0]["duplicate"], true);
}

#[test]
fn config_is_served_with_an_etag_and_304_when_unchanged() {
    let dir = temp("config");
    let config = dir.join("config.json");
    std::fs::copy(example_config(), &config).expect("copy config");
    let server = Server::start(&dir.join("events.jsonl"), &["--config", config.to_str().expect("utf-8 path")]);

    let (status, headers, body) = server.request("GET", "/config", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(&config).expect("config"));
    let etag = headers.lines().find_map(|l| l.strip_prefix("etag: ")).expect("an ETag header").trim().to_string();

    let (status, _, body) = server.request("GET", "/config", &[("If-None-Match", &etag)], b"");
    assert_eq!(status, 304);
    assert!(body.is_empty());

    let (status, _, _) = server.request("GET", "/config", &[("If-None-Match", "\"something-else\"")], b"");
    assert_eq!(status, 200);

    // Editing the file changes the ETag: the poller gets the new config.
    let mut text = std::fs::read_to_string(&config).expect("config");
    text = text.replacen("\"version\": 20261122", "\"version\": 20261123", 1);
    std::fs::write(&config, &text).expect("write config");
    let (status, headers, body) = server.request("GET", "/config", &[("If-None-Match", &etag)], b"");
    assert_eq!(status, 200);
    assert_eq!(body, text.as_bytes());
    assert!(!headers.contains(&format!("etag: {etag}")));

    let stats = server.stats();
    assert_eq!(stats["configServed"], 3);
    assert_eq!(stats["configNotModified"], 1);
}

#[test]
fn without_a_config_unknown_paths_and_wrong_methods_are_clear_errors() {
    let dir = temp("errors");
    let server = Server::start(&dir.join("events.jsonl"), &[]);
    let (status, _, body) = server.request("GET", "/config", &[], b"");
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("--config"));
    assert_eq!(server.request("GET", "/nowhere", &[], b"").0, 404);
    let (status, headers, _) = server.request("GET", "/events", &[], b"");
    assert_eq!(status, 405);
    assert!(headers.contains("allow: post"));
    assert_eq!(server.request("GET", "/", &[], b"").0, 200);
    // CORS: a page on another local origin can upload and poll.
    let (status, headers, _) = server.request("OPTIONS", "/events", &[("Origin", "http://127.0.0.1:5173")], b"");
    assert_eq!(status, 204);
    assert!(headers.contains("access-control-allow-origin: *"), "{headers}");
    assert!(headers.contains("access-control-allow-headers: content-type, if-none-match"), "{headers}");
    let (_, headers, _) = server.request("GET", "/stats", &[], b"");
    assert!(headers.contains("access-control-expose-headers: etag"), "{headers}");
}

#[test]
fn bodies_over_the_limit_are_refused_with_413() {
    let dir = temp("limit");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &["--max-body-bytes", "64"]);
    let batch = client_with_events("client-l", 20).take_batch(1000).expect("batch");
    assert!(batch.bytes.len() > 64);
    let (status, reply) = server.post(&batch.bytes);
    assert_eq!(status, 413, "{reply}");
    assert!(lines(&out).is_empty());
    assert_eq!(server.stats()["rejected"], 1);
}

#[test]
fn de_duplication_survives_a_restart_on_the_same_output_file() {
    let dir = temp("restart");
    let out = dir.join("events.jsonl");
    let batch = client_with_events("client-r", 2).take_batch(1000).expect("batch");
    {
        let server = Server::start(&out, &[]);
        assert_eq!(server.post(&batch.bytes).1["batches"][0]["duplicate"], false);
    }
    let server = Server::start(&out, &[]);
    assert_eq!(server.post(&batch.bytes).1["batches"][0]["duplicate"], true);
    assert_eq!(lines(&out).len(), batch.events);
    drop(server);
    // --truncate starts over.
    let server = Server::start(&out, &["--truncate"]);
    assert_eq!(server.post(&batch.bytes).1["batches"][0]["duplicate"], false);
    assert_eq!(lines(&out).len(), batch.events);
}

/// Reads one response (head and a `content-length` body) from a keep-alive connection.
fn read_response(s: &mut std::net::TcpStream) -> (u16, String, Vec<u8>) {
    use std::io::Read;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read"), 1, "connection closed in a response head: {raw:?}");
        raw.push(byte[0]);
    }
    let (status, head, _) = common::parse_response(&raw).expect("a response");
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length: ")).map_or(0, |n| n.trim().parse().expect("length"));
    let mut body = vec![0; len];
    s.read_exact(&mut body).expect("body");
    (status, head, body)
}

#[test]
fn keep_alive_chunked_bodies_and_expect_100_continue_work_and_idle_connections_are_closed() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let dir = temp("http");
    let out = dir.join("events.jsonl");
    let server = Server::start(&out, &["--idle-timeout", "1"]);
    let batch = client_with_events("client-h", 3).take_batch(1000).expect("batch");
    let mut s = std::net::TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");

    // Chunked, in two chunks, with Expect: 100-continue (as SDK HTTP clients send).
    let (a, b) = batch.bytes.split_at(batch.bytes.len() / 2);
    let head = "POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
                Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    s.write_all(head.as_bytes()).expect("head");
    let mut cont = [0u8; 25];
    s.read_exact(&mut cont).expect("100 Continue");
    assert_eq!(&cont, b"HTTP/1.1 100 Continue\r\n\r\n");
    for part in [a, b] {
        s.write_all(format!("{:x}\r\n", part.len()).as_bytes()).expect("size");
        s.write_all(part).expect("chunk");
        s.write_all(b"\r\n").expect("end");
    }
    s.write_all(b"0\r\n\r\n").expect("last chunk");
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(lines(&out).len(), batch.events);

    // Same connection: keep-alive.
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n").expect("second request");
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("stats");
    assert_eq!(stats["batches"], 1);
    assert_eq!(stats["openConnections"], 1);

    // Then idle: closed by the collector after --idle-timeout.
    let t0 = Instant::now();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("closed");
    assert!(rest.is_empty());
    let waited = t0.elapsed();
    assert!(waited > Duration::from_millis(700) && waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(server.stats()["timeouts"], 1);
}
