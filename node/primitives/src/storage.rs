//! Contract storage: an ordered map from byte keys to byte values, held compactly.
//!
//! A market with a deep book holds hundreds of thousands of small entries; one heap node per
//! key and per value (a `BTreeMap<Vec<u8>, Vec<u8>>`) costs about four times the bytes
//! themselves. Here most entries live in a *frozen* run: every key and value back to back in
//! one buffer, in key order, found by binary search. Writes go to a small ordered map of
//! *recent* changes (a removal of a frozen key is a tombstone), read before the frozen run;
//! when the recent map outgrows an eighth of the run, or holds more tombstones than 1/256 of
//! it (a scan steps over each), the two are merged into a new run. A clone shares the frozen
//! run.
//!
//! Only the representation differs from an ordered map: every read, and iteration order, is
//! exactly that of the map of the same entries, whatever the history of writes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::fmt;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

/// The recent map is merged into the frozen run once it holds more entries than this and
/// more than an eighth of the run. A small state (a chain without a large genesis) thus
/// lives in the map alone, as fast as an ordered map can be (~10 MB at this size).
const MIN_RECENT: usize = 65_536;

/// ... or once it holds more removals of run keys than this and than 1/256 of the run: a scan
/// steps over every removed key in its range (about 10 ns each), and removals gather where
/// scans start (the best prices of a book being filled), while merging a run of 800 000
/// entries takes about 25 ms.
const MIN_TOMBSTONES: usize = 1024;

#[derive(Clone, Default)]
pub struct ContractStorage {
    frozen: Arc<Frozen>,
    /// Changes newer than `frozen` (`None`: removed).
    recent: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// How many of `recent` are `None` (they always shadow a key of `frozen`).
    tombstones: usize,
    len: usize,
}

/// Entries in strictly increasing key order: entry `i` is `bytes[starts[i]..starts[i + 1]]`,
/// its first `key_lens[i]` bytes the key and the rest the value.
#[derive(Default)]
struct Frozen {
    bytes: Vec<u8>,
    starts: Vec<usize>,
    key_lens: Vec<u32>,
}

impl Frozen {
    fn len(&self) -> usize {
        self.key_lens.len()
    }

    fn entry(&self, i: usize) -> (&[u8], &[u8]) {
        let (start, end) = (self.starts[i], self.starts[i + 1]);
        self.bytes[start..end].split_at(self.key_lens[i] as usize)
    }

    fn key(&self, i: usize) -> &[u8] {
        self.entry(i).0
    }

    /// The index of `key`, or where it would go.
    fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The index of the first key within `lower`.
    fn lower_bound(&self, lower: Bound<&[u8]>) -> usize {
        match lower {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.search(k).unwrap_or_else(|i| i),
            Bound::Excluded(k) => self.search(k).map_or_else(|i| i, |i| i + 1),
        }
    }
}

/// Builds a frozen run from entries in any order; of equal keys the last pushed wins (as
/// when inserting them one by one into a map).
#[derive(Default)]
struct FrozenBuilder {
    run: Frozen,
    sorted: bool,
}

impl FrozenBuilder {
    fn push(&mut self, key: &[u8], value: &[u8]) {
        let run = &mut self.run;
        if run.starts.is_empty() {
            run.starts.push(0);
            self.sorted = true;
        } else if self.sorted && run.key(run.len() - 1) >= key {
            self.sorted = false;
        }
        run.bytes.extend_from_slice(key);
        run.bytes.extend_from_slice(value);
        run.starts.push(run.bytes.len());
        // Keys are bounded far below 4 GiB by the host (and by the store's own limits).
        run.key_lens
            .push(u32::try_from(key.len()).unwrap_or(u32::MAX));
    }

    fn finish(self) -> Frozen {
        let run = self.run;
        if self.sorted {
            return run;
        }
        // Sort the entries' indices by key, the later of equal keys first, then keep the
        // first of each key.
        let mut order: Vec<usize> = (0..run.len()).collect();
        order.sort_by(|&a, &b| run.key(a).cmp(run.key(b)).then(b.cmp(&a)));
        order.dedup_by(|later, earlier| run.key(*later) == run.key(*earlier));
        let mut out = FrozenBuilder::default();
        out.run.bytes.reserve(run.bytes.len());
        for i in order {
            let (k, v) = run.entry(i);
            out.push(k, v);
        }
        out.run
    }
}

impl ContractStorage {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        match self.recent.get(key) {
            Some(v) => v.as_deref(),
            None => self.frozen.search(key).ok().map(|i| self.frozen.entry(i).1),
        }
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`; returns what it held.
    pub fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        let old = match self.recent.entry(key) {
            btree_map::Entry::Occupied(mut e) => match e.insert(Some(value)) {
                Some(v) => Some(v),
                None => {
                    self.tombstones -= 1;
                    None
                }
            },
            btree_map::Entry::Vacant(e) => {
                let old = self
                    .frozen
                    .search(e.key())
                    .ok()
                    .map(|i| self.frozen.entry(i).1.to_vec());
                e.insert(Some(value));
                old
            }
        };
        if old.is_none() {
            self.len += 1;
        }
        self.maybe_compact();
        old
    }

    /// Removes `key`; returns what it held.
    pub fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let old = match self.frozen.search(key) {
            // Not in the run: no tombstone needed.
            Err(_) => self.recent.remove(key).flatten(),
            Ok(i) => match self.recent.insert(key.to_vec(), None) {
                Some(None) => None,
                Some(Some(v)) => {
                    self.tombstones += 1;
                    Some(v)
                }
                None => {
                    self.tombstones += 1;
                    Some(self.frozen.entry(i).1.to_vec())
                }
            },
        };
        if old.is_some() {
            self.len -= 1;
        }
        self.maybe_compact();
        old
    }

    /// Every entry in key order.
    pub fn iter(&self) -> Iter<'_> {
        self.range_from(Bound::Unbounded)
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.iter().map(|(k, _)| k)
    }

    /// The entries from `lower` on, in key order.
    pub fn range_from(&self, lower: Bound<&[u8]>) -> Iter<'_> {
        Iter {
            frozen: &self.frozen,
            next: self.frozen.lower_bound(lower),
            recent: self
                .recent
                .range::<[u8], _>((lower, Bound::Unbounded))
                .peekable(),
        }
    }

    fn from_frozen(frozen: Frozen) -> Self {
        Self {
            len: frozen.len(),
            frozen: Arc::new(frozen),
            recent: BTreeMap::new(),
            tombstones: 0,
        }
    }

    fn maybe_compact(&mut self) {
        let run = self.frozen.len();
        if self.recent.len() > MIN_RECENT.max(run / 8)
            || self.tombstones > MIN_TOMBSTONES.max(run / 256)
        {
            let mut merged = FrozenBuilder::default();
            merged.run.bytes.reserve(self.frozen.bytes.len());
            for (k, v) in self.iter() {
                merged.push(k, v);
            }
            *self = Self::from_frozen(merged.finish());
        }
    }
}

/// The entries of a [`ContractStorage`] in key order: the frozen run and the recent changes
/// merged, the recent one winning for a key in both.
pub struct Iter<'a> {
    frozen: &'a Frozen,
    next: usize,
    recent: Peekable<btree_map::Range<'a, Vec<u8>, Option<Vec<u8>>>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frozen = (self.next < self.frozen.len()).then(|| self.frozen.entry(self.next));
            let Some(&(rk, rv)) = self.recent.peek() else {
                self.next += 1;
                return frozen;
            };
            let (rk, rv): (&'a [u8], Option<&'a [u8]>) = (rk.as_slice(), rv.as_deref());
            match frozen.map(|(fk, _)| fk.cmp(rk)) {
                Some(Ordering::Less) => {
                    self.next += 1;
                    return frozen;
                }
                Some(Ordering::Equal) => self.next += 1,
                Some(Ordering::Greater) | None => {}
            }
            self.recent.next();
            if let Some(v) = rv {
                return Some((rk, v));
            }
        }
    }
}

impl<'a> IntoIterator for &'a ContractStorage {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, V)> for ContractStorage {
    /// Of equal keys the last wins, as when inserting them one by one.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut b = FrozenBuilder::default();
        for (k, v) in iter {
            b.push(k.as_ref(), v.as_ref());
        }
        Self::from_frozen(b.finish())
    }
}

impl PartialEq for ContractStorage {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for ContractStorage {}

impl fmt::Debug for ContractStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractStorage")
            .field("entries", &self.len)
            .field("recent", &self.recent.len())
            .field("removed", &self.tombstones)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift) for the model test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    fn key(n: u64) -> Vec<u8> {
        // Keys of different lengths, some prefixes of others.
        let full = format!("k/{}", n % 199_999).into_bytes();
        let len = if n % 7 < 2 {
            2 + n as usize % 5
        } else {
            full.len()
        };
        full[..full.len().min(len)].to_vec()
    }

    fn check(s: &ContractStorage, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
        assert_eq!(s.len(), model.len());
        assert_eq!(
            s.tombstones,
            s.recent.values().filter(|v| v.is_none()).count()
        );
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            s.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        assert_eq!(got, want);
        for probe in [&b"k/"[..], b"k/1", b"k/12", b"k/5", b"k/99", b"z", b""] {
            assert_eq!(s.get(probe), model.get(probe).map(Vec::as_slice));
            for lower in [Bound::Included(probe), Bound::Excluded(probe)] {
                let got: Vec<&[u8]> = s.range_from(lower).map(|(k, _)| k).collect();
                let want: Vec<&[u8]> = model
                    .range::<[u8], _>((lower, Bound::Unbounded))
                    .map(|(k, _)| k.as_slice())
                    .collect();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn reads_and_order_match_an_ordered_map_through_compactions() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut s = ContractStorage::new();
        let mut model = BTreeMap::new();
        // Enough operations to merge into the run more than once.
        for step in 0..200_000u64 {
            let k = key(rng.next(1_000_000));
            if rng.next(3) == 0 {
                assert_eq!(s.remove(&k), model.remove(&k));
            } else {
                let v = step.to_le_bytes()[..1 + rng.next(8) as usize].to_vec();
                assert_eq!(s.insert(k.clone(), v.clone()), model.insert(k, v));
            }
            if step % 19_999 == 0 {
                check(&s, &model);
            }
        }
        check(&s, &model);
        assert!(s.frozen.len() > 0, "never merged into a run: {s:?}");
        // A clone shares the frozen run but not later writes.
        let before = s.clone();
        let model_before = model.clone();
        for n in 0..5_000 {
            let k = key(n);
            s.remove(&k);
            model.remove(&k);
        }
        check(&s, &model);
        check(&before, &model_before);
        assert_ne!(s, before);
    }

    #[test]
    fn removals_at_the_head_of_a_run_are_merged_away() {
        let mut s: ContractStorage = (0..20_000u32)
            .map(|i| (format!("k/{i:05}").into_bytes(), vec![1u8]))
            .collect();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> =
            s.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        for i in 0..3_000u32 {
            let k = format!("k/{i:05}").into_bytes();
            // Removing twice, or putting back and removing again, counts one removal.
            assert!(s.remove(&k).is_some());
            assert!(s.remove(&k).is_none());
            s.insert(k.clone(), vec![2]);
            s.remove(&k);
            model.remove(&k);
            assert!(s.tombstones <= MIN_TOMBSTONES, "at {i}: {:?}", s);
        }
        // Well under the recent map's own limit, yet merged: a scan from the head of the run
        // steps over at most MIN_TOMBSTONES removed keys.
        assert!(s.frozen.len() < 20_000, "never merged: {s:?}");
        assert_eq!(
            s.tombstones,
            s.recent.values().filter(|v| v.is_none()).count()
        );
        check(&s, &model);
    }

    #[test]
    fn building_from_unordered_entries_keeps_the_last_of_equal_keys() {
        let entries = [("b", "1"), ("a", "2"), ("b", "3"), ("c", "4"), ("a", "5")];
        let s: ContractStorage = entries
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let model: BTreeMap<Vec<u8>, Vec<u8>> = entries
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        check(&s, &model);
    }
}
