//! One breaker per key (a downstream, a route), in a map of bounded size.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use metrics::{Gauge, gauge};

use super::circuit::CircuitBreaker;
use super::clock::Clock;
use super::config::{BreakerConfig, ConfigError};
use super::state::ForcedState;

/// Per-key circuit breakers with one configuration, at most `capacity` of them.
///
/// **Growth.** When a new key would exceed the capacity, one breaker is evicted first: the least recently
/// used one among those closed and not forced, or, if every breaker is open, half-open or forced, the least
/// recently used of all. "Used" means returned by [`get`](Self::get). An evicted breaker keeps working for
/// whoever still holds its `Arc`; the map forgets it, and the key starts afresh (closed) if it comes back.
///
/// **Metrics cardinality.** Every breaker of the map reports under the map's name as its `breaker` label:
/// `circuit_breaker_calls_total` and `circuit_breaker_transitions_total` are sums over the keys, so the label
/// set does not grow with the keys. Per-key breakers do not set `circuit_breaker_state` (their states would
/// overwrite each other); the map sets `circuit_breaker_keys{breaker}` to its size instead. The key itself
/// appears only in the `tracing` events (field `key`, its `Debug` form) and in each breaker's snapshot.
///
/// **Cost.** [`get`](Self::get) takes the map's lock (a hash lookup): keep the returned `Arc` where keys are
/// few and fixed, and use the map for keys discovered at run time.
pub struct BreakerMap<K> {
    name: Arc<str>,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    capacity: usize,
    keys: Gauge,
    inner: Mutex<MapInner<K>>,
}

struct MapInner<K> {
    entries: HashMap<K, Entry>,
    tick: u64,
    forced: ForcedState,
}

struct Entry {
    breaker: Arc<CircuitBreaker>,
    last_used: u64,
}

impl<K> fmt::Debug for BreakerMap<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerMap")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("len", &self.lock().entries.len())
            .finish_non_exhaustive()
    }
}

impl<K> BreakerMap<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, MapInner<K>> {
        brownout_foundation::sync::lock(&self.inner)
    }
}

impl<K: Hash + Eq + Clone + fmt::Debug> BreakerMap<K> {
    /// An empty map of breakers named `name`, each built with `config` and `clock`, holding at most
    /// `capacity` keys (at least 1).
    pub fn new(
        name: impl Into<Arc<str>>,
        config: BreakerConfig,
        clock: impl Clock,
        capacity: usize,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if capacity == 0 {
            return Err(ConfigError::map_capacity());
        }
        let name = name.into();
        metrics::describe_gauge!("circuit_breaker_keys", "Keys with a breaker of their own in a per-key breaker map.");
        let keys = gauge!("circuit_breaker_keys", "breaker" => name.to_string());
        keys.set(0.0);
        Ok(Self {
            name,
            config,
            clock: Arc::new(clock),
            capacity,
            keys,
            inner: Mutex::new(MapInner { entries: HashMap::new(), tick: 0, forced: ForcedState::None }),
        })
    }

    /// The breaker of `key`, made (closed, under the map's forced state) if the map has none.
    pub fn get(&self, key: &K) -> Arc<CircuitBreaker> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(entry) = inner.entries.get_mut(key) {
            entry.last_used = tick;
            return Arc::clone(&entry.breaker);
        }
        if inner.entries.len() >= self.capacity {
            let victim = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| (!e.breaker.is_idle_closed(), e.last_used))
                .map(|(k, _)| k.clone());
            if let Some(victim) = victim {
                inner.entries.remove(&victim);
            }
        }
        let breaker = CircuitBreaker::build(
            Arc::clone(&self.name),
            Some(format!("{key:?}")),
            &self.name,
            false,
            self.config.clone(),
            Arc::clone(&self.clock),
        )
        .unwrap_or_else(|_| unreachable!("the config was validated by BreakerMap::new"));
        if inner.forced != ForcedState::None {
            breaker.force(inner.forced);
        }
        let breaker = Arc::new(breaker);
        inner.entries.insert(key.clone(), Entry { breaker: Arc::clone(&breaker), last_used: tick });
        self.keys.set(inner.entries.len() as f64);
        breaker
    }

    /// The breaker of `key`, if the map has one (does not count as a use).
    pub fn peek(&self, key: &K) -> Option<Arc<CircuitBreaker>> {
        self.lock().entries.get(key).map(|e| Arc::clone(&e.breaker))
    }

    /// Forgets `key`'s breaker.
    pub fn remove(&self, key: &K) -> Option<Arc<CircuitBreaker>> {
        let mut inner = self.lock();
        let removed = inner.entries.remove(key).map(|e| e.breaker);
        self.keys.set(inner.entries.len() as f64);
        removed
    }

    /// Forces every breaker of the map, and those made later, into `forced`.
    pub fn force(&self, forced: ForcedState) {
        let mut inner = self.lock();
        inner.forced = forced;
        for entry in inner.entries.values() {
            entry.breaker.force(forced);
        }
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}
