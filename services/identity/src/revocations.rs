//! Revoked tokens (keystone's revocation list). A token is self-contained,
//! so revoking one is remembering its audit id until it would have expired
//! anyway. The list is folded from `TokenRevoked` records on `catalog` by
//! every API replica (through its projection consumer, persisted with its
//! offsets), so a revocation holds on every replica and across restarts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use novalog_store::{Store, StoreExt as _, Transaction};
use parking_lot::RwLock;

/// The projection table: audit id → expiry (ms since the epoch).
pub const TABLE: &str = "revoked_tokens";

/// Audit ids of revoked tokens, each with its token's expiry.
#[derive(Debug, Default)]
pub struct Revocations {
    by_audit_id: RwLock<HashMap<String, i64>>,
}

impl Revocations {
    /// Whether the token with this (own) audit id is revoked.
    pub fn is_revoked(&self, audit_id: &str) -> bool {
        self.by_audit_id.read().contains_key(audit_id)
    }

    /// How many revocations are remembered.
    pub fn len(&self) -> usize {
        self.by_audit_id.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads what the projection store holds.
    pub fn load<S: Store>(&self, store: &S) -> Result<(), novalog_store::Error> {
        let mut map = self.by_audit_id.write();
        for (key, expires_at_ms) in store.scan::<i64>(TABLE)? {
            map.insert(String::from_utf8_lossy(&key).into_owned(), expires_at_ms);
        }
        Ok(())
    }

    /// Stages a revocation made at `at_ms` into `tx` and `staged`, with the
    /// deletion of every remembered one whose token has expired by then:
    /// the list stays as long as the live tokens it names, and every
    /// replica folding the same log stores the same rows, however its
    /// batches fall.
    pub fn stage(
        &self,
        tx: &mut Transaction,
        staged: &mut Staged,
        audit_id: &str,
        expires_at_ms: i64,
        at_ms: i64,
    ) -> Result<(), novalog_store::Error> {
        let expired: Vec<String> = {
            let published = self.by_audit_id.read();
            published
                .iter()
                .filter(|(id, _)| !staged.forgotten.contains(*id))
                .chain(staged.revoked.iter())
                .filter(|(id, e)| **e <= at_ms && id.as_str() != audit_id)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in expired {
            tx.delete(TABLE, id.as_bytes());
            staged.revoked.remove(&id);
            staged.forgotten.insert(id);
        }
        tx.put(TABLE, audit_id.as_bytes(), &expires_at_ms)?;
        staged.forgotten.remove(audit_id);
        staged.revoked.insert(audit_id.to_owned(), expires_at_ms);
        Ok(())
    }

    /// Publishes what [`Revocations::stage`] staged, once it is durable.
    pub fn publish(&self, staged: Staged) {
        let mut map = self.by_audit_id.write();
        for id in staged.forgotten {
            map.remove(&id);
        }
        map.extend(staged.revoked);
    }
}

/// Revocations of one batch, not yet published.
#[derive(Debug, Default)]
pub struct Staged {
    revoked: BTreeMap<String, i64>,
    forgotten: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_revocations_are_forgotten_by_the_next_one_whatever_the_batches() {
        let r = Revocations::default();
        let mut tx = Transaction::new();
        let mut staged = Staged::default();
        r.stage(&mut tx, &mut staged, "a", 100, 10).unwrap();
        r.stage(&mut tx, &mut staged, "b", 500, 20).unwrap();
        // In the same batch, "a" expired by the time "c" is revoked.
        r.stage(&mut tx, &mut staged, "c", 900, 200).unwrap();
        r.publish(staged);
        assert!(!r.is_revoked("a"));
        assert!(r.is_revoked("b") && r.is_revoked("c"));
        assert_eq!(r.len(), 2);
        let mut staged = Staged::default();
        r.stage(&mut tx, &mut staged, "d", 1_000, 600).unwrap();
        r.publish(staged);
        assert!(!r.is_revoked("b"));
        assert_eq!(r.len(), 2);
    }
}
