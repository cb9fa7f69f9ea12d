//! Tracking: decision events, folding, bounded queue, batches, wire format.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use turnout_core::tracking::{put_varint, zigzag};
use turnout_core::*;

fn opts(tracking: TrackingOptions) -> ClientOptions {
    ClientOptions {
        service: "booking".into(),
        clock: Arc::new(FixedClock::new(1_700_000_000_000)),
        tracking: TrackingOptions {
            client_id: "client-1".into(),
            platform: "test".into(),
            sdk_version: "0.1.0".into(),
            ..tracking
        },
        ..Default::default()
    }
}

fn config() -> Vec<u8> {
    json!({
        "rollouts": [
            {"variable": "delay", "rollouts": [{"value": 60, "constraints": [{"target": "city", "op": "=", "value": 6}]}], "default": 30},
            {"variable": "noDefault", "rollouts": [{"value": 1, "constraints": [{"target": "city", "op": "=", "value": 6}]}]}
        ],
        "experiments": [{"name": "exp", "state": "RUNNING", "variables": [{"name": "color", "facets": ["pax"], "choices": [{"value": "a"}, {"value": "b"}]}]}]
    })
    .to_string()
    .into_bytes()
}

fn client(t: TrackingOptions) -> Client {
    Client::with_config(&config(), opts(t)).unwrap().0
}

fn drain(c: &Client) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(b) = c.take_batch(1000) {
        let d = decode_batch(&b.bytes).unwrap();
        assert!(c.ack(b.seq));
        out.extend(d.events);
    }
    out
}

#[test]
fn decisions_through_rollouts_and_experiments_are_recorded() {
    let c = client(TrackingOptions::default());
    let f = Facets::new().city(6).passenger(42);
    c.get_variable("delay", &f); // rollout
    c.get_variable("delay", &Facets::new().city(7)); // document default
    c.get_variable("color", &f); // experiment
    c.get_variable("noDefault", &Facets::new().city(7)); // fallback: not recorded
    c.get_variable("missing", &f); // not found: not recorded
    let events = drain(&c);
    assert_eq!(events.len(), 3);
    let e = &events[0];
    assert_eq!((&*e.service, &*e.name, e.count, e.time_ms), ("booking", "delay", 1, 1_700_000_000_000));
    assert_eq!(
        e.data,
        EventData::Decision {
            value: Arc::from("60"),
            source: Source::Rollout,
            experiment: None,
            rule: Some(0),
            choice: None
        }
    );
    assert_eq!(e.facets, f);
    assert!(matches!(&events[1].data, EventData::Decision { source: Source::Default, value, .. } if &**value == "30"));
    match &events[2].data {
        EventData::Decision { source: Source::Experiment, experiment: Some(x), choice: Some(_), .. } => {
            assert_eq!(&**x, "exp")
        }
        other => panic!("{other:?}"),
    }
    let s = c.tracking_stats();
    assert_eq!((s.recorded, s.queued, s.in_flight), (3, 0, 0));
}

#[test]
fn decision_modes() {
    let f = Facets::new().city(6).passenger(42);
    let only = client(TrackingOptions { decisions: DecisionEvents::ExperimentsOnly, ..Default::default() });
    only.get_variable("delay", &f);
    only.get_variable("color", &f);
    let events = drain(&only);
    assert_eq!(events.len(), 1);
    assert_eq!(&*events[0].name, "color");
    let off = client(TrackingOptions { decisions: DecisionEvents::Off, ..Default::default() });
    off.get_variable("delay", &f);
    off.track("tracked", 1.0, &f);
    let events = drain(&off);
    assert_eq!(events.len(), 1, "track() still records when decisions are off");
}

#[test]
fn prepared_path_and_get_variables_record_too() {
    let c = client(TrackingOptions::default());
    let ctx = c.context(Facets::new().city(6).passenger(1));
    let var = c.variable("delay");
    for _ in 0..5 {
        assert_eq!(ctx.int64(&var, 0), 60);
    }
    c.get_variables("exp", &Facets::new().passenger(1));
    let events = drain(&c);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].count, 5);
    assert_eq!(&*events[1].name, "color");
}

#[test]
fn excluded_facets_are_never_recorded() {
    let c = client(TrackingOptions { exclude_facets: vec!["email".into(), "pax".into()], ..Default::default() });
    let f = Facets::new().city(6).passenger(1).with("email", "a@b.c");
    c.get_variable("delay", &f);
    c.context(f.clone()).int64(&c.variable("delay"), 0);
    c.track("paid", 9.5, &f);
    for e in drain(&c) {
        assert!(e.facets.get("email").is_none() && e.facets.get("pax").is_none(), "{e:?}");
        assert_eq!(e.facets.get("city").unwrap().canonical(), "6");
    }
}

#[test]
fn track_prefixes_the_service_name() {
    let c = client(TrackingOptions::default());
    c.track("myEvent", 42.0, &Facets::new().passenger(123).booking("ADR-123-2-001").city(10));
    c.track("latency", 0.25, &Facets::new());
    let events = drain(&c);
    assert_eq!(&*events[0].name, "booking.myEvent");
    assert_eq!(events[0].data, EventData::Track { value: 42.0 });
    assert_eq!(events[1].data, EventData::Track { value: 0.25 });
    let no_service = Client::new(ClientOptions::default());
    no_service.track("x", 1.0, &Facets::new());
    assert_eq!(&*drain(&no_service)[0].name, "x");
}

#[test]
fn repeats_fold_into_one_event_with_a_count() {
    let c = client(TrackingOptions::default());
    let f = Facets::new().city(6).passenger(7);
    for _ in 0..1000 {
        c.get_variable("delay", &f);
    }
    // Same facets given in another order fold too.
    c.get_variable("delay", &Facets::new().passenger(7).city(6));
    c.get_variable("delay", &Facets::new().city(7).passenger(7));
    let s = c.tracking_stats();
    assert_eq!((s.recorded, s.folded, s.queued), (1002, 1000, 2));
    let events = drain(&c);
    assert_eq!(events.iter().map(|e| e.count).collect::<Vec<_>>(), vec![1001, 1]);
}

#[test]
fn fold_table_is_bounded_and_overflow_is_counted() {
    let c = client(TrackingOptions { max_fold_keys: 10, ..Default::default() });
    for pax in 0..100 {
        for _ in 0..2 {
            c.get_variable("delay", &Facets::new().city(6).passenger(pax));
        }
    }
    let s = c.tracking_stats();
    assert_eq!(s.recorded, 200);
    assert_eq!(s.folded, 10, "only the first 10 keys fold");
    assert_eq!(s.fold_overflow, 180);
    assert_eq!(s.queued, 190);
    let b = c.take_batch(10_000).unwrap();
    let d = decode_batch(&b.bytes).unwrap();
    assert_eq!(d.header.fold_overflow, 180);
    assert_eq!(d.events.iter().map(|e| e.count).sum::<u64>(), 200, "nothing is lost");
}

#[test]
fn memory_stays_bounded_with_many_distinct_users() {
    let c = client(TrackingOptions { max_queue: 10_000, ..Default::default() });
    let var = c.variable("delay");
    for pax in 0..300_000i64 {
        c.context(Facets::new().city(6).passenger(pax)).int64(&var, 0);
    }
    let s = c.tracking_stats();
    assert_eq!(s.queued, 10_000);
    assert_eq!(s.dropped, 290_000);
    let b = c.take_batch(100_000).unwrap();
    let d = decode_batch(&b.bytes).unwrap();
    assert_eq!(d.header.dropped, 290_000, "the loss travels in the next batch");
    assert_eq!(d.events.len(), 10_000);
    // The newest events survive; the oldest were dropped.
    assert_eq!(d.events[0].facets.get("pax").unwrap().canonical(), "290000");
    // Reported once.
    c.get_variable("delay", &Facets::new().city(6));
    assert_eq!(decode_batch(&c.take_batch(10).unwrap().bytes).unwrap().header.dropped, 0);
}

#[test]
fn nack_retries_the_same_bytes_and_ack_forgets() {
    let c = client(TrackingOptions::default());
    for pax in 0..5 {
        c.get_variable("delay", &Facets::new().city(6).passenger(pax));
    }
    let b1 = c.take_batch(3).unwrap();
    assert_eq!((b1.seq, b1.events), (1, 3));
    let b2 = c.take_batch(3).unwrap();
    assert_eq!((b2.seq, b2.events), (2, 2));
    assert!(c.take_batch(3).is_none());
    assert!(c.nack(1));
    assert!(!c.nack(99));
    let again = c.take_batch(3).unwrap();
    assert_eq!(again, b1, "a nacked batch comes back with the same seq and bytes");
    assert!(c.ack(1) && c.ack(2));
    assert!(!c.ack(1), "acked batches are forgotten");
    assert_eq!(c.tracking_stats().in_flight, 0);
    assert!(c.take_batch(3).is_none());
}

#[test]
fn unacked_batches_are_bounded_and_evictions_counted() {
    let c = client(TrackingOptions { max_unacked_batches: 2, ..Default::default() });
    let mut taken = Vec::new();
    for pax in 0..4 {
        c.get_variable("delay", &Facets::new().city(6).passenger(pax));
        taken.push(c.take_batch(10).unwrap());
    }
    let s = c.tracking_stats();
    assert_eq!((s.in_flight, s.dropped), (2, 2));
    assert!(!c.ack(1) && !c.ack(2) && c.ack(3) && c.ack(4));
    // Batch 1 was evicted when batch 3 was taken (reported in batch 4), batch 2 when
    // batch 4 was taken (reported in the next batch): every loss is reported once.
    assert_eq!(decode_batch(&taken[3].bytes).unwrap().header.dropped, 1);
    let b = c.take_batch(10).unwrap();
    let d = decode_batch(&b.bytes).unwrap();
    assert_eq!((d.header.dropped, d.events.len()), (1, 0), "an empty batch still carries the loss");
}

#[test]
fn batches_decode_to_exactly_what_was_recorded() {
    let c = client(TrackingOptions::default());
    let f = Facets::new()
        .passenger(9007199254740993)
        .booking("ADR-123-2-001")
        .with("score", 0.5)
        .with("vip", true)
        .session("0f8fad5b-d9cb-469f-a165-70867728950e");
    c.get_variable("delay", &f.clone().city(6));
    c.get_variable("color", &f);
    c.track("fare", 12.75, &f);
    c.track("count", -3.0, &f);
    let b = c.take_batch(100).unwrap();
    let d = decode_batch(&b.bytes).unwrap();
    assert_eq!(
        d.header,
        BatchHeader {
            client_id: "client-1".into(),
            seq: 1,
            created_at_ms: 1_700_000_000_000,
            sdk: "turnout-rust".into(),
            sdk_version: "0.1.0".into(),
            platform: "test".into(),
            dropped: 0,
            fold_overflow: 0
        }
    );
    assert_eq!(d.events.len(), 4);
    assert_eq!(d.events[0].facets, f.clone().city(6));
    assert_eq!(d.events[3].facets, f);
    assert_eq!(d.events[3].data, EventData::Track { value: -3.0 });
    // Re-encoding the decoded events gives the same bytes.
    assert_eq!(encode_batch(&d.header, &d.events), b.bytes);
}

/// A batch assembled by hand, byte by byte, from docs/wire-format.md.
#[test]
fn hand_assembled_batch_matches_the_encoder() {
    let header = BatchHeader {
        client_id: "c1".into(),
        seq: 7,
        created_at_ms: 1000,
        sdk: "t".into(),
        sdk_version: "1".into(),
        platform: "p".into(),
        dropped: 2,
        fold_overflow: 0,
    };
    let ev = |time_ms: i64, count: u64, name: &str, data: EventData, facets: Facets| Event {
        time_ms,
        count,
        service: Arc::from("svc"),
        name: Arc::from(name),
        data,
        facets,
    };
    let events = [
        ev(
            1003,
            4,
            "delay",
            EventData::Decision {
                value: Arc::from("60"),
                source: Source::Rollout,
                experiment: None,
                rule: Some(0),
                choice: None,
            },
            Facets::new().with("vip", true).city(6),
        ),
        // `svc.paid` is written bare (`paid`, track flag bit 3); the next event's
        // name `paid` has no prefix and is written whole: the same string.
        ev(1003, 1, "svc.paid", EventData::Track { value: 3.0 }, Facets::new().tag("x")),
        ev(1010, 1, "paid", EventData::Track { value: 0.5 }, Facets::new().tag("x").city(6)),
    ];
    let mut want: Vec<u8> = b"TRNB\x01".to_vec();
    // String table, in first-use order: the header's c1 t 1 p (0-3); event 0: its
    // set's service svc (4) and facet names sorted, city (5) vip (6), then the
    // name delay (7) and the value 60 (8); event 1: its set's name tag (9), then
    // its bare name paid (10); event 2 adds nothing.
    want.push(11);
    for s in ["c1", "t", "1", "p", "svc", "city", "vip", "delay", "60", "tag", "paid"] {
        want.push((s.len() as u8) << 1);
        want.extend_from_slice(s.as_bytes());
    }
    // Shapes: 3. [city int (5<<3|1 = 0x29), vip true (6<<3|4 = 0x34)];
    // [tag string (9<<3|0 = 0x48)]; [city int, tag string].
    want.extend_from_slice(&[3, 2, 0x29, 0x34, 1, 0x48, 2, 0x29, 0x48]);
    // Facet sets: 3, each (service, shape, payloads). Set 0: svc, shape 0,
    // city zigzag(6) = 12 (vip: none). Set 1: svc, shape 1, tag defines the
    // facet string "x" (header 1<<2|3 = 7). Set 2: svc, shape 2, city 12, tag
    // refers back to facet string 0 (0<<1).
    want.extend_from_slice(&[3, 4, 0, 12, 4, 1, 7, b'x', 4, 2, 12, 0]);
    // Header: client 0, sdk 1, version 2, platform 3, seq 7, created zigzag(1000) = 2000, dropped 2, overflow 0.
    want.extend_from_slice(&[0, 1, 2, 3, 7]);
    put_varint(&mut want, zigzag(1000));
    want.extend_from_slice(&[2, 0]);
    want.push(3); // 3 events
                  // Event 0: flags = count (0x80) | rule (0x20) | source rollout (1<<2); dt 3 -> 6; count 4;
                  // set 0, name 7, value 8, rule 0.
    want.extend_from_slice(&[0x80 | 0x20 | 0x04, 6, 4, 0, 7, 8, 0]);
    // Event 1: flags = bare name (0x08) | integral (0x04) | track (1); dt 0; set 1; name 10; zigzag(3) = 6.
    want.extend_from_slice(&[0x08 | 0x04 | 0x01, 0, 1, 10, 6]);
    // Event 2: flags = track, f64 value; dt 7 -> 14; set 2; name 10; 0.5 as f64 LE.
    want.extend_from_slice(&[0x01, 14, 2, 10]);
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0xE0, 0x3F]);
    let crc = crc32c_of(&want);
    want.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(encode_batch(&header, &events), want);
    let back = decode_batch(&want).unwrap();
    assert_eq!(back.events, events);
    assert_eq!(&*back.events[1].name, "svc.paid");
    assert_eq!(zigzag(1000), 2000);
    assert_eq!(put(300), vec![0xAC, 0x02]);
}

fn put(v: u64) -> Vec<u8> {
    let mut o = Vec::new();
    put_varint(&mut o, v);
    o
}

/// CRC-32C (Castagnoli), bitwise reference implementation (reflected poly 0x82F63B78).
fn crc32c_of(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn crc_reference_check_value() {
    assert_eq!(crc32c_of(b"123456789"), 0xE306_9283);
}

#[test]
fn any_corruption_is_rejected() {
    let c = client(TrackingOptions::default());
    c.get_variable("delay", &Facets::new().city(6).passenger(1));
    c.track("x", 1.5, &Facets::new().session("s"));
    let bytes = c.take_batch(10).unwrap().bytes;
    assert!(decode_batch(&bytes).is_ok());
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            assert!(decode_batch(&b).is_err(), "flipping bit {bit} of byte {i} went unnoticed");
        }
    }
    for n in 0..bytes.len() {
        assert!(decode_batch(&bytes[..n]).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode_batch(&longer).is_err());
}

fn facet_value() -> impl Strategy<Value = FacetValue> {
    prop_oneof![
        any::<i64>().prop_map(FacetValue::Int),
        any::<f64>().prop_filter("NaN never equals itself", |f| !f.is_nan()).prop_map(FacetValue::Float),
        any::<bool>().prop_map(FacetValue::Bool),
        ".{0,20}".prop_map(FacetValue::Str),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(FacetValue::Str),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        any::<i64>(),
        1u64..5,
        "[a-z]{0,6}",
        ".{0,12}",
        prop::option::of((
            0u8..4,
            prop::option::of("[a-z.]{1,8}"),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
        )),
        any::<f64>().prop_filter("NaN", |f| !f.is_nan()),
        prop::collection::btree_map("[a-z]{1,5}", facet_value(), 0..5),
    )
        .prop_map(|(t, count, svc, name, dec, track, facets)| {
            let mut f = Facets::new();
            for (k, v) in facets {
                f.set(k, v);
            }
            let data = match dec {
                Some((s, experiment, rule, choice)) => EventData::Decision {
                    value: Arc::from(json!(name).to_string()),
                    source: [Source::Experiment, Source::Rollout, Source::Default, Source::Fallback][s as usize],
                    experiment: experiment.map(Arc::from),
                    rule,
                    choice,
                },
                None => EventData::Track { value: track },
            };
            Event { time_ms: t, count, service: Arc::from(svc), name: Arc::from(name), data, facets: f }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(events in prop::collection::vec(event(), 0..30), seq in any::<u64>(), created in any::<i64>(), dropped in any::<u64>()) {
        let header = BatchHeader { client_id: "c".into(), seq, created_at_ms: created, sdk: "s".into(), sdk_version: "v".into(), platform: "p".into(), dropped, fold_overflow: 1 };
        let bytes = encode_batch(&header, &events);
        let d = decode_batch(&bytes).unwrap();
        prop_assert_eq!(&d.header, &header);
        prop_assert_eq!(&d.events, &events);
        prop_assert_eq!(encode_batch(&header, &d.events), bytes);
    }

    #[test]
    fn decoder_never_panics_on_hostile_bytes(mut bytes in prop::collection::vec(any::<u8>(), 0..400), fix_crc in any::<bool>()) {
        if bytes.len() >= 9 && fix_crc {
            // Give random bodies a valid header and checksum so the parser itself is exercised.
            bytes[..5].copy_from_slice(b"TRNB\x01");
            let n = bytes.len() - 4;
            let crc = crc32c_of(&bytes[..n]);
            bytes[n..].copy_from_slice(&crc.to_le_bytes());
        }
        let _ = decode_batch(&bytes);
    }
}

#[test]
fn bytes_do_not_depend_on_facet_order() {
    let h = BatchHeader { client_id: "c".into(), seq: 1, ..Default::default() };
    let ev = |f: Facets| Event {
        time_ms: 5,
        count: 1,
        service: Arc::from("s"),
        name: Arc::from("n"),
        data: EventData::Track { value: 1.0 },
        facets: f,
    };
    let a = ev(Facets::new().city(6).passenger(1).booking("b"));
    let b = ev(Facets::new().booking("b").passenger(1).city(6));
    assert_eq!(encode_batch(&h, &[a]), encode_batch(&h, &[b]));
}

#[test]
fn both_call_paths_fold_alike_when_facets_are_excluded() {
    let c = client(TrackingOptions { exclude_facets: vec!["session".into()], ..Default::default() });
    for s in ["s1", "s2", "s3"] {
        c.get_variable("delay", &Facets::new().city(6).session(s));
        c.context(Facets::new().city(6).session(s)).int64(&c.variable("delay"), 0);
    }
    let events = drain(&c);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].count, 6);
}

/// A batch with a valid checksum around `body` (which starts after the version byte).
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut b: Vec<u8> = b"TRNB\x01".to_vec();
    b.extend_from_slice(body);
    let crc = crc32c_of(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn expect_limit(b: &[u8]) {
    match decode_batch(b) {
        Err(DecodeError::Limit(l)) => {
            assert_eq!(l.limit, turnout_core::Limit::DecodeExpansion);
            assert!(l.found > l.max, "{l}");
            assert_eq!(l.max, b.len() as u64 * 128 + 65_536);
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn hostile_batches_cannot_amplify_memory() {
    // One long facet string referred back to by many sets: valid structure and
    // checksum, but decoding would copy the string once per set.
    let long = "x".repeat(10_000);
    let mut b = vec![1, 2, b'k']; // one string: "k" (the service and the facet name)
    b.extend_from_slice(&[1, 1, 0]); // one shape: key 0 ("k"), tag 0 (string)
    let sets = 5_000u64;
    put_varint(&mut b, sets);
    b.extend_from_slice(&[0, 0]); // set 0: service 0, shape 0, the string defined:
    put_varint(&mut b, (long.len() as u64) << 2 | 3);
    b.extend_from_slice(long.as_bytes());
    for _ in 1..sets {
        b.extend_from_slice(&[0, 0, 0]); // service 0, shape 0, back to facet string 0
    }
    b.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0]); // header, no events
    expect_limit(&sealed(&b));

    // One shape of 1,000 boolean facets (no payload) shared by many 2-byte sets.
    let mut b = Vec::new();
    put_varint(&mut b, 1_000);
    for i in 0..1_000 {
        let k = format!("k{i}");
        b.push((k.len() as u8) << 1);
        b.extend_from_slice(k.as_bytes());
    }
    b.push(1); // one shape
    put_varint(&mut b, 1_000);
    for i in 0..1_000u64 {
        put_varint(&mut b, i << 3 | 4); // key i, tag 4 (true)
    }
    put_varint(&mut b, sets);
    for _ in 0..sets {
        b.extend_from_slice(&[0, 0]);
    }
    b.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect_limit(&sealed(&b));
}

#[test]
fn shapes_with_a_repeated_key_are_rejected() {
    // Strings "k"; one shape [k int, k int]; no sets, header, no events.
    let b = sealed(&[1, 2, b'k', 1, 2, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    match decode_batch(&b) {
        Err(DecodeError::Malformed { what, .. }) => assert!(what.contains("repeats"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bytes_do_not_depend_on_sharing_and_sets_keep_float_bits() {
    let h = BatchHeader { client_id: "c".into(), seq: 1, ..Default::default() };
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let ev = |facets: Facets, service: &str| Event {
        time_ms: 5,
        count: 1,
        service: Arc::from(service),
        name: Arc::from("s.n"),
        data: EventData::Track { value: 1.0 },
        facets,
    };
    let f = Facets::new().city(6).session(uuid).with("x", -0.0);
    let one = ev(f.clone(), "s");
    let shared = [one.clone(), one]; // one service Arc and one Facets for both
    let separate = [ev(Facets::new().with("x", -0.0).session(uuid).city(6), "s"), ev(f.clone(), "s")];
    let bytes = encode_batch(&h, &shared);
    assert_eq!(encode_batch(&h, &separate), bytes, "equal events give equal bytes whatever their sharing");
    // One set, one shape, the UUID once; the name is written bare.
    let uuid_bytes = [0x0f, 0x8f, 0xad, 0x5b];
    assert_eq!(bytes.windows(4).filter(|w| *w == uuid_bytes).count(), 1);
    // 0.0 and -0.0 are different facet values: two sets, bits kept.
    let zeros = [ev(f.clone(), "s"), ev(Facets::new().city(6).session(uuid).with("x", 0.0), "s")];
    let d = decode_batch(&encode_batch(&h, &zeros)).unwrap();
    let sign = |e: &Event| match e.facets.get("x").unwrap().value() {
        FacetValue::Float(x) => x.is_sign_negative(),
        other => panic!("{other:?}"),
    };
    assert!(sign(&d.events[0]) && !sign(&d.events[1]));
    assert_eq!(&*d.events[1].name, "s.n");
    // Another service is another set, even with the same facets.
    let two = [ev(f.clone(), "s"), ev(f, "t")];
    let d = decode_batch(&encode_batch(&h, &two)).unwrap();
    assert_eq!((&*d.events[0].service, &*d.events[1].service), ("s", "t"));
    assert_eq!((&*d.events[0].name, &*d.events[1].name), ("s.n", "s.n"));
}

#[test]
fn a_forked_child_forgets_the_parents_events_and_takes_its_own_id() {
    let c = client(TrackingOptions::default());
    let f = Facets::new().city(6);
    c.get_variable("delay", &f);
    let in_flight = c.take_batch(1000).unwrap();
    c.get_variable("delay", &Facets::new().city(7));
    assert_eq!(c.client_id(), "client-1");
    // The child: what it inherited is the parent's to deliver.
    c.forked_child("child-7");
    assert_eq!(c.client_id(), "child-7");
    assert_eq!(c.tracking_stats(), TrackingStats::default());
    assert!(c.take_batch(1000).is_none());
    assert!(!c.ack(in_flight.seq), "the parent's batch is not the child's to ack");
    // Its own events go out under its id; decisions answer as before.
    assert_eq!(c.get_variable("delay", &f).int64(0), 60);
    let b = c.take_batch(1000).unwrap();
    let d = decode_batch(&b.bytes).unwrap();
    assert_eq!((d.header.client_id.as_str(), d.events.len()), ("child-7", 1));
}
