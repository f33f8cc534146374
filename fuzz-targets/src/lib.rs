//! The fuzz targets' bodies: each takes any bytes and checks what users rely on for
//! that input, panicking when something does not hold. `fuzz/` runs them under
//! libFuzzer (`scripts/fuzz.sh`); `tests/corpus.rs` replays the committed corpus and
//! a bounded seeded run through them in the test suite.

use arbitrary::{Arbitrary, Unstructured};
use tape_core::Core;
use tape_log::{FileLog, FileLogOptions};
use tape_schemas::*;

/// A target's body: panics when a check fails for these bytes.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: [(&str, Target); 4] = [
    ("decode_command", decode_command),
    ("core_stream", core_stream),
    ("file_log", file_log),
    ("gateway_input", gateway_input),
];

/// Any bytes on the commands topic, as bincode or JSON: decoding never panics, and
/// the engine answers the record with exactly one outcome (a rejection when it is
/// not a command) without breaking an invariant.
pub fn decode_command(bytes: &[u8]) {
    let _ = tape_schemas::codec::decode_record(bytes);
    let mut core = Core::default();
    let mut out = Vec::new();
    let _ = core.apply_bytes(bytes, &mut out);
    let outcomes = out
        .iter()
        .filter(|e| matches!(e, Event::Outcome { .. }))
        .count();
    assert_eq!(outcomes, 1, "one outcome per record: {out:?}");
    core.check_invariants().expect("invariants hold");
}

#[derive(Arbitrary, Debug)]
struct Step {
    kind: u8,
    a: u64,
    b: u64,
    c: u64,
    dt: u16,
    repeat: bool,
    restore_here: bool,
}

/// Arbitrary command streams, structure-aware (every command kind; prices and sizes
/// near the market and garbage; signed, forged or expired; repeated ids) applied to
/// a core with a market and funded accounts. After every command: exactly one
/// outcome, and every invariant holds. Where the input says so, a snapshot is
/// restored and must carry on byte for byte like the live core.
pub fn core_stream(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(steps) = Vec::<Step>::arbitrary(&mut u) else {
        return;
    };
    let steps = &steps[..steps.len().min(256)];
    let shape: Vec<tape_testkit::random::Step> = steps
        .iter()
        .map(|s| (s.kind, s.a, s.b, s.c, s.dt % 3_000, s.repeat))
        .collect();
    let envelopes = tape_testkit::random::envelopes(&shape);
    let setup = envelopes.len() - shape.len();
    let mut live = Core::default();
    let mut out = Vec::new();
    for (i, e) in envelopes.iter().enumerate() {
        out.clear();
        live.apply(e, &mut out);
        let outcomes = out
            .iter()
            .filter(|ev| matches!(ev, Event::Outcome { .. }))
            .count();
        assert_eq!(outcomes, 1, "command {i}: {out:?}");
        if let Err(v) = live.check_invariants() {
            panic!("command {i} broke an invariant: {v}");
        }
        if i >= setup && steps[i - setup].restore_here {
            let restored = Core::restore(&live.snapshot()).expect("a snapshot restores");
            assert_eq!(
                restored.snapshot(),
                live.snapshot(),
                "restore changed the state"
            );
            let (mut a, mut b) = (live.clone(), restored);
            let (mut oa, mut ob) = (Vec::new(), Vec::new());
            for e in &envelopes[i + 1..] {
                oa.clear();
                ob.clear();
                a.apply(e, &mut oa);
                b.apply(e, &mut ob);
                assert_eq!(oa, ob, "the restored core diverged");
            }
            assert_eq!(a.state_hash(), b.state_hash());
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Damage {
    records: Vec<Vec<u8>>,
    /// (the DURABLE mark rather than the segment, position, bytes written there)
    writes: Vec<(bool, u16, Vec<u8>)>,
    truncate_segment_to: Option<u16>,
    truncate_mark_to: Option<u8>,
    follow: bool,
}

/// An embedded log whose segment and mark files were corrupted (overwritten,
/// truncated, a lying DURABLE mark): opening it for writing or following it never
/// panics; what it reads back is a prefix of what was appended (CRC framing), and a
/// reopened log takes new appends after it.
pub fn file_log(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(d) = Damage::arbitrary(&mut u) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(damaged_log(d));
}

async fn damaged_log(d: Damage) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let records: Vec<Vec<u8>> = d.records.into_iter().take(32).collect();
    {
        let (log, _) = FileLog::open(dir.path(), FileLogOptions::default()).expect("opens");
        if !records.is_empty() {
            log.append(records.clone()).await.expect("appends");
        }
        log.close();
    }
    let segment = std::fs::read_dir(dir.path())
        .expect("lists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "seg"));
    let mark = dir.path().join("DURABLE");
    for (to_mark, at, bytes) in d.writes.iter().take(8) {
        let path = if *to_mark {
            Some(&mark)
        } else {
            segment.as_ref()
        };
        if let Some(mut content) = path.and_then(|p| std::fs::read(p).ok()) {
            let at = usize::from(*at).min(content.len());
            let end = (at + bytes.len()).min(content.len());
            content[at..end].copy_from_slice(&bytes[..end - at]);
            std::fs::write(path.expect("read above"), content).expect("writes");
        }
    }
    let truncate = |path: &std::path::Path, to: u64| {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.set_len(to.min(len));
        }
    };
    if let (Some(n), Some(seg)) = (d.truncate_segment_to, segment.as_ref()) {
        truncate(seg, u64::from(n));
    }
    if let Some(n) = d.truncate_mark_to {
        truncate(&mark, u64::from(n));
    }
    let got = if d.follow {
        let Ok(log) = FileLog::follow(dir.path()) else {
            return;
        };
        let got = read_all(&log).await;
        log.close();
        got
    } else {
        let Ok((log, _)) = FileLog::open(dir.path(), FileLogOptions::default()) else {
            return;
        };
        let got = read_all(&log).await;
        let at = log.append(vec![b"after".to_vec()]).await.expect("appends");
        assert_eq!(
            at,
            vec![got.len() as u64],
            "the next append follows what is left"
        );
        log.close();
        got
    };
    assert!(
        got.len() <= records.len(),
        "more records than were appended"
    );
    for (g, r) in got.iter().zip(&records) {
        assert_eq!(g, r, "a corrupted record was returned");
    }
}

async fn read_all(log: &FileLog) -> Vec<Vec<u8>> {
    let end = log.end_offset().await.unwrap_or(0);
    let mut got = Vec::new();
    let Ok(mut reader) = log.reader(0).await else {
        return got;
    };
    while (got.len() as u64) < end {
        match reader
            .next_batch(1_000, std::time::Duration::from_millis(10))
            .await
        {
            Ok(batch) if !batch.is_empty() => got.extend(batch.into_iter().map(|r| r.bytes)),
            _ => break,
        }
    }
    got
}

/// What strangers type into the gateway: decimals, command ids, API tokens, client
/// order ids, symbols, asset codes, deposit references, JSON commands. Parsing never
/// panics; a decimal that parses renders back to itself.
pub fn gateway_input(bytes: &[u8]) {
    use async_graphql::{ScalarType, Value};
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(d) = tape_gateway::types::Decimal::parse(Value::String(text.to_string())) {
        let again: Dec = d.0.to_string().parse().expect("a rendered decimal parses");
        assert_eq!(again, d.0);
    }
    let _ = uuid::Uuid::parse_str(text);
    let _ = parse_token(text);
    let _ = Signer::from_token(text, std::sync::Arc::new(SigningStream::new(1)));
    let _ = text.parse::<ClientOrderId>();
    let _ = text.parse::<Symbol>();
    let _ = text.parse::<AssetCode>();
    let _ = text.parse::<ExternalRef>();
    let _ = codec::command_from_json(text);
}
