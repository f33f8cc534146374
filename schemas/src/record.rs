//! What the events log holds: each record framed with the epoch of the engine that
//! wrote it, and the fences a new leader appends before anything else.
//!
//! A frame is 9 bytes: a kind byte, then the writer's epoch (a `u64`, big-endian).
//! After it comes an event envelope's canonical bytes (`EventEnvelope`) or a fence's.
//! The epoch is outside the envelope and its hash chain: two engines that derive the
//! same event write the same envelope bytes, whatever their epochs, so recovery,
//! shadow standbys and `tape replay verify` compare envelopes byte for byte.
//!
//! **The fencing rule** (every reader keeps it, through [`Fencing`]): once a fence of
//! epoch `e` has been read, records of epochs below `e` are ignored. An engine writes
//! nothing before its own fence, so an event of an epoch above the last fence read
//! proves that fence is behind it, and raises the reader's epoch the same way. The
//! embedded log has one writer and no fences: all its records are epoch 0.

use crate::codec::CodecError;

/// Bytes before the envelope in every events-log record.
pub const FRAME_BYTES: usize = 9;

const KIND_EVENT: u8 = 0xE7;
const KIND_FENCE: u8 = 0xF5;

/// A fence: from here on, the events log belongs to `epoch`'s writer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fence {
    pub epoch: u64,
    /// Who appended it (the engine's id, as in the control log).
    pub writer: String,
    /// The last event `seq` the new leader had derived when it fenced.
    pub derived_seq: u64,
}

/// One events-log record, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub enum EventRecord<'a> {
    Event { epoch: u64, envelope: &'a [u8] },
    Fence(Fence),
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("an events-log record of {0} bytes is shorter than its frame")]
    Short(usize),
    #[error("an events-log record starts with kind byte {0:#04x}, neither an event nor a fence")]
    Kind(u8),
    #[error("a fence does not decode: {0}")]
    Fence(#[source] Box<CodecError>),
}

/// The frame for an event of `epoch`; the envelope's bytes follow it.
pub fn event_frame(epoch: u64) -> [u8; FRAME_BYTES] {
    let mut f = [0u8; FRAME_BYTES];
    f[0] = KIND_EVENT;
    f[1..].copy_from_slice(&epoch.to_be_bytes());
    f
}

/// Writes `epoch` into a record that already has an event frame (the sealer leaves
/// room for it; the writer knows its epoch only when it appends). Only the engine's
/// own sealed records come here, never bytes read from a log: a record shorter than
/// a frame is a bug, and the index panics on it.
pub fn set_epoch(record: &mut [u8], epoch: u64) {
    record[1..FRAME_BYTES].copy_from_slice(&epoch.to_be_bytes());
}

/// An event record: the frame, then the envelope.
pub fn frame_event(epoch: u64, envelope: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(FRAME_BYTES + envelope.len());
    r.extend_from_slice(&event_frame(epoch));
    r.extend_from_slice(envelope);
    r
}

/// A fence record.
pub fn fence_record(fence: &Fence) -> Vec<u8> {
    let mut r = Vec::with_capacity(64);
    r.push(KIND_FENCE);
    r.extend_from_slice(&fence.epoch.to_be_bytes());
    crate::codec::write_bincode(fence, &mut r).expect("fences always encode");
    r
}

impl<'a> EventRecord<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<EventRecord<'a>, RecordError> {
        if bytes.len() < FRAME_BYTES {
            return Err(RecordError::Short(bytes.len()));
        }
        let epoch = u64::from_be_bytes(bytes[1..FRAME_BYTES].try_into().expect("8 bytes"));
        match bytes[0] {
            KIND_EVENT => Ok(EventRecord::Event {
                epoch,
                envelope: &bytes[FRAME_BYTES..],
            }),
            KIND_FENCE => Ok(EventRecord::Fence(
                crate::codec::from_bincode(&bytes[FRAME_BYTES..])
                    .map_err(|e| RecordError::Fence(Box::new(e)))?,
            )),
            k => Err(RecordError::Kind(k)),
        }
    }

    /// The envelope's bytes of an event record (`None` for a fence or a bad frame).
    pub fn envelope_of(bytes: &'a [u8]) -> Option<&'a [u8]> {
        match EventRecord::parse(bytes) {
            Ok(EventRecord::Event { envelope, .. }) => Some(envelope),
            _ => None,
        }
    }
}

impl crate::EventEnvelope {
    /// Decodes the envelope of an event record (a fence or a bad frame is an error).
    pub fn from_record(bytes: &[u8]) -> Result<crate::EventEnvelope, CodecError> {
        match EventRecord::parse(bytes) {
            Ok(EventRecord::Event { envelope, .. }) => crate::codec::from_bincode(envelope),
            Ok(EventRecord::Fence(f)) => Err(CodecError::NotAnEvent(format!(
                "a fence of epoch {}",
                f.epoch
            ))),
            Err(e) => Err(CodecError::NotAnEvent(e.to_string())),
        }
    }
}

/// What a reader does with one record (see the module's fencing rule).
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<'a> {
    /// The next event, to use.
    Event { epoch: u64, envelope: &'a [u8] },
    /// A fence; the reader's epoch is now at least `fence.epoch`.
    Fence(Fence),
    /// A record of an epoch an earlier fence deposed: ignored.
    Fenced { epoch: u64 },
}

/// The fencing rule, kept by one reader as it reads the events log forward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fencing {
    epoch: u64,
    /// Records set aside because their epoch was deposed.
    ignored: u64,
}

impl Fencing {
    /// A reader that starts at the log's beginning.
    pub fn new() -> Fencing {
        Fencing::default()
    }

    /// A reader that resumes where the epoch in force was `epoch` (kept with its
    /// position).
    pub fn resume(epoch: u64) -> Fencing {
        Fencing { epoch, ignored: 0 }
    }

    /// The epoch in force: the highest fence or writer read so far.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// How many records this reader has set aside as fenced.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    pub fn admit<'a>(&mut self, bytes: &'a [u8]) -> Result<Admit<'a>, RecordError> {
        Ok(match EventRecord::parse(bytes)? {
            EventRecord::Fence(f) if f.epoch < self.epoch => {
                self.ignored += 1;
                Admit::Fenced { epoch: f.epoch }
            }
            EventRecord::Fence(f) => {
                self.epoch = f.epoch;
                Admit::Fence(f)
            }
            EventRecord::Event { epoch, .. } if epoch < self.epoch => {
                self.ignored += 1;
                Admit::Fenced { epoch }
            }
            EventRecord::Event { epoch, envelope } => {
                self.epoch = epoch;
                Admit::Event { epoch, envelope }
            }
        })
    }
}

/// A reader's view of the events log: the fencing rule, then each `seq` once (a
/// deposed engine's copies of earlier events, and re-sent records, are skipped).
#[derive(Clone, Copy, Debug)]
pub struct EventFilter {
    fencing: Fencing,
    next_seq: u64,
    copies: u64,
}

impl EventFilter {
    /// Takes events from `from_seq` on (0 or 1: from the first), under the epoch in
    /// force where the reader starts.
    pub fn new(from_seq: u64, epoch: u64) -> EventFilter {
        EventFilter {
            fencing: Fencing::resume(epoch),
            next_seq: from_seq,
            copies: 0,
        }
    }

    /// The envelope's bytes and seq of the next event, or `None` for a record this
    /// reader skips.
    pub fn take_bytes<'a>(
        &mut self,
        record: &'a [u8],
    ) -> Result<Option<(u64, &'a [u8])>, CodecError> {
        let envelope = match self.fencing.admit(record) {
            Ok(Admit::Event { envelope, .. }) => envelope,
            Ok(_) => return Ok(None),
            Err(e) => return Err(CodecError::NotAnEvent(e.to_string())),
        };
        let (seq, _, _) = crate::EventEnvelope::peek(envelope)?;
        if seq < self.next_seq {
            self.copies += 1;
            return Ok(None);
        }
        self.next_seq = seq + 1;
        Ok(Some((seq, envelope)))
    }

    /// The next event, decoded, or `None` for a record this reader skips.
    pub fn take(&mut self, record: &[u8]) -> Result<Option<crate::EventEnvelope>, CodecError> {
        match self.take_bytes(record)? {
            Some((_, envelope)) => Ok(Some(crate::codec::from_bincode(envelope)?)),
            None => Ok(None),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.fencing.epoch()
    }

    /// The seq the next event taken must have at least.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Records set aside because a fence deposed their epoch.
    pub fn ignored(&self) -> u64 {
        self.fencing.ignored()
    }

    /// Copies of events already taken.
    pub fn copies(&self) -> u64 {
        self.copies
    }
}

/// The epoch in force just before a reader that starts mid-log, from the records
/// before it (`window`, read by the caller). A deposed engine writes at most one
/// append after the fence that deposed it (`APPEND_RECORDS_MAX` records: it checks
/// where each append landed), so a window of twice that holds a record of the epoch
/// in force, or the fence itself.
pub fn epoch_before<'a>(window: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    window
        .into_iter()
        .filter_map(|r| match EventRecord::parse(r) {
            Ok(EventRecord::Event { epoch, .. }) => Some(epoch),
            Ok(EventRecord::Fence(f)) => Some(f.epoch),
            Err(_) => None,
        })
        .max()
        .unwrap_or(0)
}

/// The most records an engine appends at once under an epoch above 0 (see
/// [`epoch_before`]).
pub const APPEND_RECORDS_MAX: usize = 4_096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_sets_aside_the_older_epochs_records_after_it_and_only_those() {
        let old = frame_event(1, b"old");
        let new = frame_event(2, b"new");
        let fence = fence_record(&Fence {
            epoch: 2,
            writer: "b".into(),
            derived_seq: 7,
        });
        let mut f = Fencing::new();
        assert_eq!(
            f.admit(&old).unwrap(),
            Admit::Event {
                epoch: 1,
                envelope: b"old"
            }
        );
        assert!(matches!(
            f.admit(&fence).unwrap(),
            Admit::Fence(Fence { epoch: 2, .. })
        ));
        assert_eq!(f.admit(&old).unwrap(), Admit::Fenced { epoch: 1 });
        assert!(matches!(
            f.admit(&new).unwrap(),
            Admit::Event { epoch: 2, .. }
        ));
        // A stale fence (a claim that lost) raises nothing.
        let stale = fence_record(&Fence {
            epoch: 1,
            writer: "a".into(),
            derived_seq: 3,
        });
        assert_eq!(f.admit(&stale).unwrap(), Admit::Fenced { epoch: 1 });
        assert_eq!((f.epoch(), f.ignored()), (2, 2));
    }

    #[test]
    fn a_record_without_a_frame_is_an_error_not_an_event() {
        let mut f = Fencing::new();
        assert!(matches!(f.admit(b"abc"), Err(RecordError::Short(3))));
        assert!(matches!(f.admit(&[0u8; 12]), Err(RecordError::Kind(0))));
        let mut r = frame_event(5, b"x");
        set_epoch(&mut r, 9);
        assert_eq!(
            EventRecord::parse(&r).unwrap(),
            EventRecord::Event {
                epoch: 9,
                envelope: b"x"
            }
        );
    }
}
