//! The checks after a run: against a fresh derivation, the auditors' replay, the
//! last snapshot and a rebuild of the read models.

use std::collections::{BTreeMap, BTreeSet};

use tape_core::{Core, CoreConfig};
use tape_engine::{Deriver, EngineOptions, SnapshotStore};
use tape_schemas::{CommandResult, Event, EventEnvelope};

use crate::world::World;

/// A fresh derivation of the command records.
pub(crate) struct Derived {
    pub(crate) events: Vec<Vec<u8>>,
    core: Core,
    /// The engine's clock after each command.
    times: Vec<u64>,
}

pub(crate) fn derive(records: &[Vec<u8>], options: EngineOptions) -> Result<Derived, String> {
    let mut d = Deriver::new(options.core, options.checkpoint_every);
    let mut events = Vec::new();
    let mut times = Vec::with_capacity(records.len());
    for (offset, bytes) in records.iter().enumerate() {
        d.step(offset as u64, bytes, &mut events)
            .map_err(|e| format!("a fresh derivation broke: {e}"))?;
        times.push(d.applier.core.time_ms());
    }
    Ok(Derived {
        events,
        core: d.applier.core,
        times,
    })
}

pub(crate) fn check(world: &mut World, sent: &BTreeSet<Vec<u8>>) -> Result<(), String> {
    let commands = world.commands.records().map_err(|e| e.to_string())?;
    let stored = world.events.records().map_err(|e| e.to_string())?;
    let Derived {
        events: expected,
        core,
        times,
    } = derive(&commands, world.engine)?;
    let r = &mut world.report;
    r.command_records = commands.len();
    let mut digest = blake3::Hasher::new();
    for c in &commands {
        digest.update(&(c.len() as u64).to_le_bytes());
        digest.update(c);
    }
    r.commands_digest = *digest.finalize().as_bytes();

    // Nothing a producer sent is missing.
    let on_log: BTreeSet<&Vec<u8>> = commands.iter().collect();
    if let Some(missing) = sent.iter().find(|s| !on_log.contains(s)) {
        return Err(format!(
            "a command sent by a producer is not on the commands log ({} bytes)",
            missing.len()
        ));
    }
    r.duplicate_records = commands.len() - on_log.len();

    // The events, read under the fencing rule and with the copies a deposed engine
    // left set aside, are byte for byte a fresh derivation.
    let events = used_events(&stored, &expected, &world.control, r)?;
    r.events = events.len();
    if events.len() != expected.len() {
        return Err(format!(
            "the events log holds {} events; a fresh derivation gives {}",
            events.len(),
            expected.len()
        ));
    }
    // The epoch is the writer's, outside the envelope and its hash chain.
    if let Some(i) =
        (0..expected.len()).find(|&i| envelope_of(events[i]) != envelope_of(&expected[i]))
    {
        return Err(format!(
            "event seq {} differs from a fresh derivation",
            i + 1
        ));
    }

    check_outcomes(&commands, &events, &times, &world.engine.core)?;

    // The hash chain and the checkpoints, as an auditor checks them.
    let verified = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(tape_replay::verify(
            &world.commands,
            &world.events,
            world.engine.core,
            |_, _| {},
        ));
    verified.map_err(|e| format!("replay verification failed: {e}"))?;

    // The engine's last snapshot holds the derived state.
    let host = &world.engines[world.final_leader];
    let store = SnapshotStore::open(&host.snapshots, 3).map_err(|e| e.to_string())?;
    let saved = store
        .latest()
        .map_err(|e| e.to_string())?
        .ok_or("the engine left no snapshot")?;
    if saved.next_command != commands.len() as u64 {
        let files: Vec<String> = std::fs::read_dir(&host.snapshots)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        return Err(format!(
            "the last snapshot is at command {}, not {} (snapshots: {files:?})",
            saved.next_command,
            commands.len()
        ));
    }
    let restored = Core::restore(&saved.core).map_err(|e| e.to_string())?;
    if restored.state_hash() != core.state_hash() {
        return Err("the last snapshot's state differs from a fresh derivation's".into());
    }

    // The read models equal a rebuild from the events this check used: no record of
    // a deposed epoch reached them.
    let (_, views) = tape_projections::open(&world.projector.dir).map_err(|e| e.to_string())?;
    let rebuilt_dir = world.projector.dir.with_file_name("views-rebuilt");
    let (mut fresh, fresh_views) =
        tape_projections::open(&rebuilt_dir).map_err(|e| e.to_string())?;
    fresh
        .apply_records(events.iter().map(|e| e.as_slice()))
        .map_err(|e| e.to_string())?;
    // Outcomes are stored in groups, one per batch the projector took, so the rows
    // depend on how the log was read: they are compared by what they answer.
    for offset in 0..commands.len() as u64 {
        let ours = views.outcome_at(offset).map_err(|e| e.to_string())?;
        let theirs = fresh_views.outcome_at(offset).map_err(|e| e.to_string())?;
        if ours != theirs || ours.is_none() {
            return Err(format!(
                "the read models answer command {offset} with {ours:?}; a rebuild says {theirs:?}"
            ));
        }
    }
    // Where each stands: the same seq and clock (the epoch it keeps may differ: the
    // rebuild never saw the fences).
    let (ours, theirs) = (views.checkpoint(), fresh_views.checkpoint());
    if ours.as_ref().ok() != theirs.as_ref().ok() {
        return Err(format!(
            "the read models stand at {ours:?}; a rebuild at {theirs:?}"
        ));
    }
    let (ours, theirs) = (rows(&views)?, rows(&fresh_views)?);
    if ours != theirs {
        let differs = ours
            .iter()
            .find(|(k, v)| theirs.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .or_else(|| theirs.keys().find(|k| !ours.contains_key(*k)).cloned());
        return Err(format!(
            "the read models differ from a rebuild from the log ({} rows against {}; first at key {:?})",
            ours.len(),
            theirs.len(),
            differs
        ));
    }
    Ok(())
}

fn envelope_of(record: &[u8]) -> Option<&[u8]> {
    tape_schemas::EventRecord::envelope_of(record)
}

/// The events log as every reader must take it, with the fencing rule kept here on
/// its own (a fence of epoch e sets aside every later record of an older epoch),
/// checked against `tape_schemas::Fencing` record by record; each seq once, copies
/// byte-identical to the first. Every fence is its epoch's winner's on the control
/// log, and every event used was written under an epoch won there (or 0, before any).
fn used_events<'a>(
    stored: &'a [Vec<u8>],
    expected: &[Vec<u8>],
    control: &[tape_schemas::ControlRecord],
    r: &mut crate::Report,
) -> Result<Vec<&'a Vec<u8>>, String> {
    use tape_schemas::{Admit, EventRecord};
    let (winners, void_claims) = crate::control::decided(control);
    r.takeovers = winners.len().saturating_sub(1) as u32;
    r.void_claims = void_claims;
    let mut events: Vec<&Vec<u8>> = Vec::with_capacity(expected.len());
    let mut fencing = tape_schemas::Fencing::new();
    let mut fenced_by = 0u64;
    for (offset, bytes) in stored.iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("the record at offset {offset}: {e}");
        let record = EventRecord::parse(bytes).map_err(|e| at(&e))?;
        let (used, epoch) = match &record {
            EventRecord::Fence(f) => {
                if winners.get(&f.epoch) != Some(&f.writer) {
                    return Err(at(&format!(
                        "a fence of epoch {} by {}, which the control log gives to {:?}",
                        f.epoch,
                        f.writer,
                        winners.get(&f.epoch)
                    )));
                }
                r.fences += 1;
                fenced_by = fenced_by.max(f.epoch);
                (false, f.epoch)
            }
            EventRecord::Event { epoch, .. } => (*epoch >= fenced_by, *epoch),
        };
        let admitted = fencing.admit(bytes).map_err(|e| at(&e))?;
        if matches!(admitted, Admit::Event { .. }) != used {
            return Err(at(&format!(
                "the fencing rule says {} an event of epoch {epoch} after a fence of {fenced_by}; Fencing says {admitted:?}",
                if used { "use" } else { "ignore" }
            )));
        }
        if !used {
            r.fenced_records += matches!(record, EventRecord::Event { .. }) as u32;
            continue;
        }
        if epoch > 0 && !winners.contains_key(&epoch) {
            return Err(at(&format!("an event of epoch {epoch}, never won")));
        }
        let Admit::Event { envelope, .. } = admitted else {
            continue;
        };
        let (seq, _, _) = EventEnvelope::peek(envelope).map_err(|e| at(&e))?;
        let next = events.len() as u64 + 1;
        if seq == next {
            events.push(bytes);
        } else if seq < next {
            if expected.get(seq as usize - 1).map(|e| envelope_of(e)) != Some(envelope_of(bytes)) {
                return Err(at(&format!("the copy of seq {seq} differs")));
            }
            r.event_copies += 1;
        } else {
            return Err(at(&format!(
                "the events log skips from seq {next} to {seq}"
            )));
        }
    }
    Ok(events)
}

/// The read models' rows with the grouped views (ledger entries, trades, an
/// account's orders, outcomes) joined up per owner. The projector writes those in
/// groups of up to 128 rows, one group per batch it took, keyed by owner and first
/// id; a group's value is a bincode list (a one-byte length, then the rows), so the
/// rows end to end, in key order, do not depend on where batches began.
fn rows(views: &tape_projections::Views) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
    use tape_projections::keys;
    let grouped = [
        keys::ENTRY,
        keys::ACCOUNT_TRADE,
        keys::MARKET_TRADE,
        keys::ACCOUNT_ORDER,
        keys::OUTCOME,
    ];
    let mut out: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in views.dump().map_err(|e| e.to_string())? {
        if k == keys::CHECKPOINT {
            continue;
        }
        if k.first().is_some_and(|t| grouped.contains(t)) && k.len() >= 9 && !v.is_empty() {
            out.entry(k[..k.len() - 8].to_vec())
                .or_default()
                .extend_from_slice(&v[1..]);
        } else {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// Every command record has exactly one outcome, and its events are together (the
/// expiries its time stamp sets off come before the outcome, its own effects after
/// it); of identical copies of a record at most one runs (the others are answered
/// as duplicates with the same result, or refused). The one exception is the
/// documented rule for unsigned commands (trusted operator input): their ids are
/// remembered by the answer window only, so a copy arriving after the window has
/// moved past the first (`dedupe_window_ms` of clock, or `dedupe_capacity` ids)
/// runs again.
fn check_outcomes(
    commands: &[Vec<u8>],
    events: &[&Vec<u8>],
    times: &[u64],
    cfg: &CoreConfig,
) -> Result<(), String> {
    let mut outcomes: Vec<Option<(CommandResult, bool)>> = vec![None; commands.len()];
    let mut last_offset: Option<usize> = None;
    for bytes in events {
        let env = EventEnvelope::from_record(bytes).map_err(|e| e.to_string())?;
        let offset = env.command_offset as usize;
        if last_offset.is_some_and(|last| offset < last) {
            return Err(format!(
                "seq {} belongs to command {offset}, after events of command {}",
                env.seq,
                last_offset.unwrap_or(0)
            ));
        }
        if last_offset != Some(offset) {
            if let Some(last) = last_offset {
                if outcomes[last].is_none() {
                    return Err(format!("command {last} has no outcome among its events"));
                }
            }
        }
        last_offset = Some(offset);
        let slot = outcomes.get_mut(offset).ok_or_else(|| {
            format!(
                "seq {} names command offset {offset}, past the log",
                env.seq
            )
        })?;
        if let Event::Outcome {
            result, duplicate, ..
        } = env.event
        {
            if slot.is_some() {
                return Err(format!(
                    "command {offset} has a second outcome (seq {})",
                    env.seq
                ));
            }
            *slot = Some((result, duplicate));
        }
    }
    let mut runs: BTreeMap<&Vec<u8>, (usize, CommandResult)> = BTreeMap::new();
    for (offset, (record, outcome)) in commands.iter().zip(&outcomes).enumerate() {
        let (result, duplicate) =
            outcome.ok_or_else(|| format!("command {offset} has no outcome"))?;
        if duplicate {
            continue;
        }
        if let CommandResult::Accepted { .. } = result {
            if let Some((earlier, first)) = runs.insert(record, (offset, result)) {
                let command = tape_schemas::codec::decode_command(record);
                let unsigned = command.as_ref().is_ok_and(|c| c.auth.is_none());
                let forgotten = times[offset].saturating_sub(times[earlier])
                    >= cfg.dedupe_window_ms
                    || offset - earlier > cfg.dedupe_capacity;
                if unsigned && forgotten {
                    continue;
                }
                let command = command
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(|e| format!("undecodable: {e}"));
                return Err(format!(
                    "command {offset} ran again: the identical record at {earlier} was already accepted ({first:?}): {command}"
                ));
            }
        }
    }
    Ok(())
}
