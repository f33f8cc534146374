//! Per-key rate limits whose memory stays bounded: buckets that have refilled are
//! indistinguishable from new ones, so they are dropped once the map grows, and a
//! flood of distinct callers (addresses, keys) costs memory only while their
//! buckets are draining.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Buckets kept before a prune is considered.
const BUCKETS_PRUNE_AT: usize = 10_000;
/// A prune is considered once every this many admissions.
const PRUNE_EVERY_ADMITS: u64 = 1_024;

pub struct Limiter {
    keyed: DefaultKeyedRateLimiter<String, StateInformationMiddleware>,
    admits: AtomicU64,
    /// The size that triggers the next prune: twice what the last one left (so many
    /// live callers do not make every prune a wasted scan), at least
    /// `BUCKETS_PRUNE_AT`.
    prune_at: AtomicUsize,
}

impl Limiter {
    pub fn new(per_second: u32, burst: u32) -> Limiter {
        let quota = Quota::per_second(NonZeroU32::new(per_second.max(1)).expect("nonzero"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("nonzero"));
        Limiter {
            keyed: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            admits: AtomicU64::new(0),
            prune_at: AtomicUsize::new(BUCKETS_PRUNE_AT),
        }
    }

    /// `Ok(remaining)`: admitted, with this many requests left in the burst now;
    /// `Err(wait)` when the bucket is empty.
    pub fn admit(&self, bucket: String) -> Result<u32, Duration> {
        if self
            .admits
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY_ADMITS)
        {
            self.prune();
        }
        self.keyed
            .check_key(&bucket)
            .map(|state| state.remaining_burst_capacity())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Drops the buckets that have refilled, when there are many.
    pub fn prune(&self) {
        if self.keyed.len() > self.prune_at.load(Ordering::Relaxed) {
            self.keyed.retain_recent();
            self.keyed.shrink_to_fit();
            let left = self.keyed.len();
            self.prune_at
                .store(BUCKETS_PRUNE_AT.max(left * 2), Ordering::Relaxed);
        }
    }

    /// Buckets held now.
    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.keyed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_distinct_callers_is_forgotten_once_their_buckets_refill() {
        // 1,000 requests a second per caller, bursts of 1: a bucket refills in 1 ms.
        let limiter = Limiter::new(1_000, 1);
        let mut most = 0;
        for round in 0..5u64 {
            for i in 0..50_000u64 {
                assert!(limiter.admit(format!("anon:{round}-{i}")).is_ok());
                most = most.max(limiter.buckets());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Each round's callers are dropped by the prunes of the next: the map never
        // holds much more than one round, not all 250,000.
        assert!(most < 110_000, "{most} buckets held at once");
        std::thread::sleep(Duration::from_millis(5));
        limiter.keyed.retain_recent();
        assert_eq!(limiter.buckets(), 0, "every bucket refilled is droppable");
        // A caller over its limit is still refused.
        assert!(limiter.admit("key:1".into()).is_ok());
        assert!(limiter.admit("key:1".into()).is_err());
    }
}
