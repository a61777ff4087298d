//! A call's view of contract storage: the committed map plus the call's own writes.

use std::collections::BTreeMap;
use std::ops::Bound;

use v2v_primitives::ContractStorage;

/// Writes made by one call (`None` = removed), read through before the base map.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay {
    pub fn get<'a>(&'a self, base: &'a ContractStorage, key: &[u8]) -> Option<&'a [u8]> {
        match self.writes.get(key) {
            Some(v) => v.as_deref(),
            None => base.get(key),
        }
    }

    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The smallest live key with `prefix` greater than `after`, merging base and writes;
    /// a key removed in the overlay is skipped.
    pub fn next_key(
        &self,
        base: &ContractStorage,
        prefix: &[u8],
        after: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        let mut lower: Bound<Vec<u8>> = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        loop {
            let from_base = base
                .range_from(lower.as_ref().map(Vec::as_slice))
                .next()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with(prefix));
            let from_writes = self
                .writes
                .range((lower.clone(), Bound::Unbounded))
                .next()
                .filter(|(k, _)| k.starts_with(prefix));
            match (from_base, from_writes) {
                (None, None) => return None,
                (Some(b), None) => return Some(b.to_vec()),
                (b, Some((wk, wv))) => {
                    if let Some(b) = b
                        && b < wk.as_slice()
                    {
                        return Some(b.to_vec());
                    }
                    // The overlay decides for this key (it equals or precedes the base's).
                    if wv.is_some() {
                        return Some(wk.clone());
                    }
                    lower = Bound::Excluded(wk.clone());
                }
            }
        }
    }

    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_key_merges_base_and_writes() {
        let base: ContractStorage = ["a/1", "a/3", "a/5", "b/1"]
            .iter()
            .map(|k| (k.as_bytes(), [1u8]))
            .collect();
        let mut o = Overlay::default();
        o.set(b"a/2".to_vec(), vec![2]);
        o.remove(b"a/3".to_vec());
        o.remove(b"a/9".to_vec());
        let mut seen = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        while let Some(k) = o.next_key(&base, b"a/", cur.as_deref()) {
            seen.push(String::from_utf8(k.clone()).unwrap());
            cur = Some(k);
        }
        assert_eq!(seen, ["a/1", "a/2", "a/5"]);
        assert_eq!(o.get(&base, b"a/3"), None);
        assert_eq!(o.get(&base, b"a/2"), Some(&[2u8][..]));
        assert_eq!(
            o.next_key(&base, b"b/", Some(b"a/9")),
            Some(b"b/1".to_vec())
        );
    }
}
