//! [`Table`]: one map of the conductor's state that knows its rows in the
//! store. Every write through it marks the row's key, and
//! [`Table::persist`] stages exactly the marked rows into the batch that
//! also carries the consumed offsets; [`Table::load`] reads the table back
//! on start. A flow changes a table and nothing else: no flow has to
//! remember to tell the shell what it touched.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Index;

use novalog_store::{Result, Store, StoreExt, Transaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// How a table's key is spelled in the store.
pub trait Key: Ord + Clone {
    fn to_bytes(&self) -> Vec<u8>;
    /// `None`: not a key of this table (a row written by something else).
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl Key for Uuid {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

impl Key for String {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Big-endian, so the store orders the rows as the map does.
impl Key for u32 {
    fn to_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// Rows of one store table held in memory, with the keys changed since
/// they were last persisted.
#[derive(Debug, Clone)]
pub struct Table<K, V> {
    /// The store table the rows live in.
    name: &'static str,
    rows: BTreeMap<K, V>,
    /// Keys written (inserted, changed or removed) since the last persist.
    dirty: BTreeSet<K>,
}

impl<K: Key, V> Table<K, V> {
    pub fn new(name: &'static str) -> Self {
        Table {
            name,
            rows: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.get(k)
    }

    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.rows.contains_key(k)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.rows.iter()
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.rows.keys()
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.rows.values()
    }

    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.dirty.insert(k.clone());
        self.rows.insert(k, v)
    }

    /// Removes the row; its key is marked only if there was one.
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (k, v) = self.rows.remove_entry(k)?;
        self.dirty.insert(k);
        Some(v)
    }

    /// The row to change in place; marked as changed.
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (key, v) = self
            .rows
            .range_mut::<Q, _>((std::ops::Bound::Included(k), std::ops::Bound::Included(k)))
            .next()?;
        self.dirty.insert(key.clone());
        Some(v)
    }

    /// The row `k`, made with `make` if absent; marked as changed.
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        self.dirty.insert(k.clone());
        self.rows.entry(k).or_insert_with(make)
    }

    /// Removes every row (each one marked).
    pub fn clear(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        self.dirty.extend(rows.into_keys());
    }

    /// Whether `k` changed since the last persist.
    pub fn is_dirty<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.dirty.contains(k)
    }

    /// Puts a row read back from the store into memory, unmarked: it is
    /// already there as it is.
    pub fn restore(&mut self, k: K, v: V) {
        self.rows.insert(k, v);
    }

    /// Drops `k` from memory, not from the store, if `gone` holds for it
    /// and it has no change still to persist. Whether it left.
    pub fn evict(&mut self, k: &K, gone: impl FnOnce(&V) -> bool) -> bool {
        if self.dirty.contains(k) || !self.rows.get(k).is_some_and(gone) {
            return false;
        }
        self.rows.remove(k);
        true
    }
}

impl<K: Key, V: Serialize + DeserializeOwned> Table<K, V> {
    /// Reads every row of table `name`.
    pub fn load(store: &impl Store, name: &'static str) -> Result<Self> {
        Self::load_where(store, name, |_| true)
    }

    /// Reads the rows of table `name` for which `keep` holds; the others
    /// stay in the store only (read back with [`Table::fetch`]).
    pub fn load_where(
        store: &impl Store,
        name: &'static str,
        keep: impl Fn(&V) -> bool,
    ) -> Result<Self> {
        let mut t = Table::new(name);
        let mut failed = None;
        store.walk_raw(
            name,
            None,
            false,
            &mut |k, v| match novalog_store::decode::<V>(name, v) {
                Ok(v) => {
                    if let Some(k) = K::from_bytes(k).filter(|_| keep(&v)) {
                        t.rows.insert(k, v);
                    }
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )?;
        match failed {
            Some(e) => Err(e),
            None => Ok(t),
        }
    }

    /// The stored row `k` (one not held in memory).
    pub fn fetch(&self, store: &impl Store, k: &K) -> Result<Option<V>> {
        store.get(self.name, &k.to_bytes())
    }

    /// Stages every changed row into `tx` (a removed one as a delete) and
    /// returns their keys; afterwards nothing is marked.
    pub fn persist(&mut self, tx: &mut Transaction) -> Result<Vec<K>> {
        let dirty = std::mem::take(&mut self.dirty);
        for k in &dirty {
            match self.rows.get(k) {
                Some(v) => tx.put(self.name, &k.to_bytes(), v)?,
                None => tx.delete(self.name, &k.to_bytes()),
            }
        }
        Ok(dirty.into_iter().collect())
    }
}

impl<K, V, Q> Index<&Q> for Table<K, V>
where
    K: Key + Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    fn index(&self, k: &Q) -> &V {
        self.rows.get(k).expect("no row for key")
    }
}

#[cfg(test)]
mod tests {
    use novalog_store::MemStore;

    use super::*;

    fn commit(store: &MemStore, t: &mut Table<String, u32>) -> Vec<String> {
        let mut tx = Transaction::new();
        let changed = t.persist(&mut tx).unwrap();
        store.commit(tx).unwrap();
        changed
    }

    #[test]
    fn only_changed_rows_are_persisted_and_a_reload_sees_them() {
        let store = MemStore::new();
        let mut t = Table::new("t");
        t.insert("a".to_owned(), 1);
        t.insert("b".to_owned(), 2);
        assert_eq!(commit(&store, &mut t), ["a", "b"]);
        assert!(commit(&store, &mut t).is_empty(), "nothing changed since");

        *t.get_mut("a").unwrap() = 10;
        t.remove("b");
        t.remove("never");
        *t.get_or_insert_with("c".to_owned(), || 0) += 3;
        assert_eq!(commit(&store, &mut t), ["a", "b", "c"]);

        let back: Table<String, u32> = Table::load(&store, "t").unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            t.iter().collect::<Vec<_>>()
        );
        assert_eq!(back["a"], 10);
        assert!(!back.contains_key("b"));
    }

    #[test]
    fn clear_deletes_every_row() {
        let store = MemStore::new();
        let mut t = Table::new("t");
        t.insert("a".to_owned(), 1);
        t.insert("b".to_owned(), 2);
        commit(&store, &mut t);
        t.clear();
        commit(&store, &mut t);
        assert!(Table::<String, u32>::load(&store, "t").unwrap().is_empty());
    }

    #[test]
    fn evicted_rows_stay_in_the_store_and_come_back_unmarked() {
        let store = MemStore::new();
        let mut t: Table<u32, u32> = Table::new("t");
        t.insert(1, 1);
        t.insert(2, 2);
        assert!(!t.evict(&1, |_| true), "unpersisted change stays");
        let mut tx = Transaction::new();
        t.persist(&mut tx).unwrap();
        store.commit(tx).unwrap();
        assert!(!t.evict(&2, |v| *v == 1));
        assert!(t.evict(&1, |v| *v == 1));
        assert_eq!(t.len(), 1);
        let row = t.fetch(&store, &1).unwrap().unwrap();
        t.restore(1, row);
        assert!(!t.is_dirty(&1));
        let kept = Table::<u32, u32>::load_where(&store, "t", |v| *v > 1).unwrap();
        assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [2]);
    }
}
