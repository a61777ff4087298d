//! The event queue: a min-heap of timed events with a sequence number, so that events at the
//! same instant run in the order they were scheduled and every run is totally ordered (the
//! shape of mysticeti's `simulator.rs`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use v2v_consensus::{TimerId, ValidatorIndex};
use v2v_primitives::Hash;

/// Something that happens at an instant of virtual time. Events aimed at a replica carry the
/// replica's `epoch` when they were scheduled: a crash or a recovery bumps the epoch, which
/// cancels whatever the replica had in flight (timers, builds, checks, syncs, and messages
/// travelling to it).
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The replica's engines receive `Input::Start` (time 0, or on recovery).
    Start {
        replica: usize,
    },
    Deliver {
        from: ValidatorIndex,
        to: usize,
        epoch: u64,
        payload: Arc<[u8]>,
    },
    Timer {
        replica: usize,
        instance: usize,
        epoch: u64,
        id: TimerId,
        generation: u64,
    },
    BuildDone {
        replica: usize,
        instance: usize,
        epoch: u64,
        height: u64,
        view: u64,
    },
    VerifyDone {
        replica: usize,
        instance: usize,
        epoch: u64,
        height: u64,
        view: u64,
        block_hash: Hash,
    },
    SyncDone {
        replica: usize,
        instance: usize,
        epoch: u64,
        peer: ValidatorIndex,
        up_to_height: u64,
        attempt: u32,
    },
    Crash {
        replica: usize,
    },
    Recover {
        replica: usize,
    },
    PartitionStart {
        id: u64,
        groups: Vec<Vec<u32>>,
    },
    PartitionHeal {
        id: u64,
    },
}

struct Scheduled {
    time: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    // Reversed: `BinaryHeap` is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

#[derive(Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    next_seq: u64,
}

impl EventQueue {
    pub(crate) fn push(&mut self, time: u64, event: Event) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Scheduled { time, seq, event });
    }

    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|s| s.time)
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, Event)> {
        self.heap.pop().map(|s| (s.time, s.event))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(5, Event::Crash { replica: 0 });
        q.push(1, Event::Crash { replica: 1 });
        q.push(5, Event::Crash { replica: 2 });
        q.push(1, Event::Crash { replica: 3 });
        let order: Vec<(u64, usize)> = std::iter::from_fn(|| q.pop())
            .map(|(t, e)| match e {
                Event::Crash { replica } => (t, replica),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec![(1, 1), (1, 3), (5, 0), (5, 2)]);
    }
}
