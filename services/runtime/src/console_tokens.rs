//! The console tokens a reader of `instances` keeps (the API for
//! `os-console-auth-tokens`, the console proxy to let a connection
//! through): every token issued, until it expires or its instance is
//! deleted. The rows sit in the reader's store, staged in the same
//! transaction as its offsets; memory holds the same rows, which are few:
//! an expired token is dropped when the next one is issued.

use std::collections::HashMap;

use novalog_schemas::console::ConsoleToken;
use novalog_schemas::{Envelope, Event, InstanceEvent};
use novalog_store::{Store, StoreExt, Transaction};
use uuid::Uuid;

/// The store table of tokens, by hash.
pub const TABLE: &str = "console_tokens";

/// Tokens by hash.
#[derive(Debug, Default, Clone)]
pub struct ConsoleTokens {
    by_hash: HashMap<String, ConsoleToken>,
}

impl ConsoleTokens {
    /// Every token the store holds.
    pub fn load<S: Store + ?Sized>(store: &S) -> novalog_store::Result<Self> {
        let by_hash = store
            .scan::<ConsoleToken>(TABLE)?
            .into_iter()
            .map(|(_, t)| (t.token_hash.clone(), t))
            .collect();
        Ok(ConsoleTokens { by_hash })
    }

    /// Folds one `instances` record: an issued token is kept (and those
    /// expired by the record's time dropped), a deleted instance's tokens
    /// are dropped. Other records change nothing.
    pub fn apply(&mut self, env: &Envelope, tx: &mut Transaction) -> novalog_store::Result<()> {
        match &env.event {
            Event::Instance(InstanceEvent::ConsoleTokenIssued(token)) => {
                let at = env.meta.occurred_at_ms;
                self.drop_where(tx, |t| !t.is_valid_at(at));
                tx.put(TABLE, token.token_hash.as_bytes(), &**token)?;
                self.by_hash
                    .insert(token.token_hash.clone(), (**token).clone());
            }
            Event::Instance(InstanceEvent::InstanceDeleted { .. }) => {
                if let Ok(id) = Uuid::parse_str(&env.meta.aggregate_id) {
                    self.drop_where(tx, |t| t.instance_id == id);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn drop_where(&mut self, tx: &mut Transaction, gone: impl Fn(&ConsoleToken) -> bool) {
        if self.by_hash.is_empty() {
            return;
        }
        self.by_hash.retain(|hash, t| {
            let drop = gone(t);
            if drop {
                tx.delete(TABLE, hash.as_bytes());
            }
            !drop
        });
    }

    /// The token with this hash if it still works at `now_ms`.
    pub fn valid(&self, token_hash: &str, now_ms: i64) -> Option<&ConsoleToken> {
        self.by_hash
            .get(token_hash)
            .filter(|t| t.is_valid_at(now_ms))
    }

    /// Tokens held (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use novalog_schemas::console::{NOVNC, hash_token};
    use novalog_schemas::{Actor, Meta};
    use novalog_store::MemStore;

    fn env(instance: Uuid, at: i64, event: InstanceEvent) -> Envelope {
        let mut meta = Meta::origin(
            Uuid::new_v4(),
            "req-1".into(),
            Actor {
                user_id: "u".into(),
                project_id: "p".into(),
                roles: vec![],
            },
            instance.to_string(),
        );
        meta.occurred_at_ms = at;
        Envelope {
            meta,
            event: Event::Instance(event),
        }
    }

    fn issued(instance: Uuid, token: &str, at: i64, ttl: i64) -> Envelope {
        env(
            instance,
            at,
            InstanceEvent::ConsoleTokenIssued(Box::new(ConsoleToken {
                instance_id: instance,
                token_hash: hash_token(token),
                console_type: NOVNC.into(),
                host: "fake-host-0".into(),
                address: "127.0.0.1".into(),
                port: 5900,
                expires_at_ms: at + ttl,
            })),
        )
    }

    fn fold(store: &MemStore, tokens: &mut ConsoleTokens, env: &Envelope) {
        let mut tx = Transaction::new();
        tokens.apply(env, &mut tx).unwrap();
        store.commit(tx).unwrap();
    }

    #[test]
    fn a_token_works_until_it_expires_and_outlives_a_reload() {
        let store = MemStore::new();
        let mut tokens = ConsoleTokens::default();
        let vm = Uuid::from_u128(1);
        fold(&store, &mut tokens, &issued(vm, "a", 1_000, 600_000));
        let hash = hash_token("a");
        assert_eq!(tokens.valid(&hash, 2_000).unwrap().instance_id, vm);
        assert!(tokens.valid(&hash, 601_000).is_none(), "expired");
        assert!(tokens.valid(&hash_token("b"), 2_000).is_none(), "unknown");
        let reloaded = ConsoleTokens::load(&store).unwrap();
        assert_eq!(reloaded.valid(&hash, 2_000).unwrap().port, 5900);
    }

    #[test]
    fn a_deleted_instance_takes_its_tokens_along_and_no_other() {
        let store = MemStore::new();
        let mut tokens = ConsoleTokens::default();
        let (vm, other) = (Uuid::from_u128(1), Uuid::from_u128(2));
        fold(&store, &mut tokens, &issued(vm, "a", 1_000, 600_000));
        fold(&store, &mut tokens, &issued(vm, "b", 1_000, 600_000));
        fold(&store, &mut tokens, &issued(other, "c", 1_000, 600_000));
        let deleted = env(
            vm,
            2_000,
            InstanceEvent::InstanceDeleted {
                deleted_at_ms: 2_000,
            },
        );
        fold(&store, &mut tokens, &deleted);
        assert!(tokens.valid(&hash_token("a"), 3_000).is_none());
        assert!(tokens.valid(&hash_token("b"), 3_000).is_none());
        assert!(tokens.valid(&hash_token("c"), 3_000).is_some());
        assert_eq!(ConsoleTokens::load(&store).unwrap().len(), 1);
    }

    #[test]
    fn expired_tokens_are_dropped_when_the_next_is_issued() {
        let store = MemStore::new();
        let mut tokens = ConsoleTokens::default();
        let vm = Uuid::from_u128(1);
        fold(&store, &mut tokens, &issued(vm, "a", 1_000, 10));
        fold(&store, &mut tokens, &issued(vm, "b", 5_000, 600_000));
        assert_eq!(tokens.len(), 1);
        assert_eq!(ConsoleTokens::load(&store).unwrap().len(), 1);
    }
}
