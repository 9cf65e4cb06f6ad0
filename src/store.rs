//! The store the Envoy workers share: keys holding bytes and a version, written with
//! compare-and-swap (proxy-wasm shared data, `proxy_get_shared_data` / `proxy_set_shared_data`).
//!
//! The circuit breakers ([`crate::breaker::Breakers`]) keep their state here. The filter
//! implements [`SharedStore`] with host calls (`src/filter/host.rs`); [`MemoryStore`] is the same
//! contract in memory, for the native and wasm unit tests, which can also make another worker
//! write between a read and its compare-and-swap.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a write or read did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The key was written since it was read (the version passed is stale): read again.
    Stale,
    /// Any other failure (the raw host status, for logs).
    Failed(u32),
}

/// A key-value store shared by every worker, with a version per key.
///
/// Contract (the proxy-wasm one): a key never written reads as `(None, 0)`; every write bumps the
/// key's version; a write with `cas == 0` always succeeds, and with `cas != 0` only while the
/// key's version is still `cas`, else [`StoreError::Stale`].
pub trait SharedStore {
    /// The key's bytes (`None` when never written) and its current version.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError>;
    /// Writes the key if its version is still `cas` (`0` = unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

impl<S: SharedStore + ?Sized> SharedStore for Rc<S> {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        (**self).set(key, value, cas)
    }
}

/// A hook run before a write: another worker acting between a read and its compare-and-swap.
type Interleave = Box<dyn FnMut()>;

/// [`SharedStore`] in memory, with the proxy-wasm contract. Single-threaded, like a wasm VM.
#[derive(Default)]
pub struct MemoryStore {
    data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    before_write: RefCell<Option<Interleave>>,
    writes: RefCell<u64>,
}

impl MemoryStore {
    pub fn new() -> Rc<MemoryStore> {
        Rc::new(MemoryStore::default())
    }

    /// Runs `hook` before every later write, until [`MemoryStore::interleave_off`]. Writes the
    /// hook itself makes don't run it again.
    pub fn interleave(&self, hook: impl FnMut() + 'static) {
        *self.before_write.borrow_mut() = Some(Box::new(hook));
    }

    /// Stops the hook set by [`MemoryStore::interleave`].
    pub fn interleave_off(&self) {
        *self.before_write.borrow_mut() = None;
    }

    /// How many writes succeeded.
    pub fn writes(&self) -> u64 {
        *self.writes.borrow()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        Ok(match self.data.borrow().get(key) {
            Some((bytes, version)) => (Some(bytes.clone()), *version),
            None => (None, 0),
        })
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        // Take the hook out while it runs: its own writes must not re-enter it.
        let hook = self.before_write.borrow_mut().take();
        if let Some(mut hook) = hook {
            hook();
            let mut slot = self.before_write.borrow_mut();
            if slot.is_none() {
                *slot = Some(hook);
            }
        }
        let mut data = self.data.borrow_mut();
        let current = data.get(key).map_or(0, |(_, v)| *v);
        if cas != 0 && cas != current {
            return Err(StoreError::Stale);
        }
        data.insert(
            key.to_owned(),
            (value.to_vec(), current.wrapping_add(1).max(1)),
        );
        *self.writes.borrow_mut() += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    #[test]
    fn a_key_never_written_reads_as_none_at_version_0() {
        let store = MemoryStore::new();
        assert_eq!(store.get("k"), Ok((None, 0)));
    }

    #[test]
    fn a_write_with_a_stale_version_fails_and_changes_nothing() {
        let store = MemoryStore::new();
        store.set("k", b"a", 0).unwrap();
        let (_, v1) = store.get("k").unwrap();
        store.set("k", b"b", v1).unwrap();
        assert_eq!(store.set("k", b"c", v1), Err(StoreError::Stale));
        let (bytes, v2) = store.get("k").unwrap();
        assert_eq!(bytes.as_deref(), Some(&b"b"[..]));
        assert_ne!(v1, v2);
        // cas 0 writes unconditionally.
        store.set("k", b"d", 0).unwrap();
        assert_eq!(store.get("k").unwrap().0.as_deref(), Some(&b"d"[..]));
        assert_eq!(store.writes(), 3);
    }

    #[test]
    fn the_interleave_hook_writes_between_a_read_and_the_compare_and_swap() {
        let store = MemoryStore::new();
        store.set("k", b"first", 0).unwrap();
        let other = Rc::clone(&store);
        store.interleave(move || {
            other.set("k", b"other", 0).unwrap();
        });
        let (_, v) = store.get("k").unwrap();
        assert_eq!(store.set("k", b"mine", v), Err(StoreError::Stale));
        store.interleave_off();
        let (bytes, v) = store.get("k").unwrap();
        assert_eq!(bytes.as_deref(), Some(&b"other"[..]));
        store.set("k", b"mine", v).unwrap();
        assert_eq!(store.get("k").unwrap().0.as_deref(), Some(&b"mine"[..]));
    }
}
