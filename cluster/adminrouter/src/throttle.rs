//! Failed-login throttling, per uid and per client address.
//!
//! Each key (a uid, a client IP) has a fixed window that starts at its first counted attempt.
//! An attempt is *charged* before the password is checked (so that concurrent attempts cannot
//! slip past the limit) and *refunded* when it turns out not to be a failure (a successful login
//! resets the uid's counter; a malformed request or an internal error is refunded). Once a key
//! has [`LoginThrottle::max_failures_per_uid`] (or `..._per_address`) charges in its window,
//! further attempts are refused with 429 and `Retry-After` until the window ends.
//!
//! Memory is bounded: each table holds at most [`LoginThrottle::max_tracked`] keys; when a new
//! key does not fit, expired windows are dropped first, then the oldest window. uids that are
//! not syntactically valid are never tracked per uid (they are refused without a password check
//! anyway), so a key is at most 96 bytes (uid) or an IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits on failed logins (part of [`crate::auth::AuthConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failed logins allowed per uid in one window.
    pub max_failures_per_uid: u32,
    /// Failed logins allowed per client IP address in one window (whatever the uids).
    pub max_failures_per_address: u32,
    /// Length of a window.
    pub window: Duration,
    /// Keys kept per table (uids, addresses).
    pub max_tracked: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            max_failures_per_uid: 10,
            max_failures_per_address: 30,
            window: Duration::from_secs(60),
            max_tracked: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Window>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    /// Seconds until `key` may try again, if it is over `max` now.
    fn blocked(&self, key: &K, max: u32, window: Duration, now: Instant) -> Option<u64> {
        let w = self.map.get(key)?;
        let end = w.start + window;
        if now >= end || w.count < max {
            return None;
        }
        let left = end.saturating_duration_since(now);
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0)).map(|s| s.max(1))
    }

    fn charge(&mut self, key: &K, window: Duration, now: Instant, max_tracked: usize) {
        if let Some(w) = self.map.get_mut(key) {
            if now >= w.start + window {
                *w = Window {
                    start: now,
                    count: 1,
                };
            } else {
                w.count = w.count.saturating_add(1);
            }
            return;
        }
        if self.map.len() >= max_tracked.max(1) {
            self.map.retain(|_, w| now < w.start + window);
            if self.map.len() >= max_tracked.max(1) {
                let oldest = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.start)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    self.map.remove(&k);
                }
            }
        }
        self.map.insert(
            key.clone(),
            Window {
                start: now,
                count: 1,
            },
        );
    }

    fn refund(&mut self, key: &K) {
        if let Some(w) = self.map.get_mut(key) {
            w.count = w.count.saturating_sub(1);
        }
    }

    fn reset(&mut self, key: &K) {
        self.map.remove(key);
    }
}

#[derive(Debug, Default)]
struct Tables {
    uids: Table<String>,
    addresses: Table<IpAddr>,
}

/// The failed-login counters of one Admin Router.
#[derive(Debug)]
pub struct Throttle {
    limits: LoginThrottle,
    tables: Mutex<Tables>,
}

/// What [`Throttle::begin`] charged, to settle with [`Throttle::finish`].
#[derive(Debug, Clone)]
pub struct Attempt {
    uid: Option<String>,
    address: Option<IpAddr>,
}

/// How a charged attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Logged in: the uid's counter is reset, the address's charge refunded.
    Success,
    /// Wrong credentials: the charge stays.
    Failure,
    /// Neither (a malformed request, an internal error): the charge is refunded.
    Neutral,
}

impl Throttle {
    pub fn new(limits: LoginThrottle) -> Self {
        Self {
            limits,
            tables: Mutex::new(Tables::default()),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Charges an attempt for `uid` (only if it is a valid uid) and `address`, or returns the
    /// seconds to wait (for `Retry-After`) when either is over its limit.
    pub fn begin(&self, uid: Option<&str>, address: Option<IpAddr>) -> Result<Attempt, u64> {
        self.begin_at(uid, address, Instant::now())
    }

    fn begin_at(
        &self,
        uid: Option<&str>,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, u64> {
        let l = self.limits;
        let uid = uid
            .filter(|u| crate::auth::validate_uid(u).is_ok())
            .map(str::to_string);
        let mut t = self.tables();
        let wait_uid = uid
            .as_ref()
            .and_then(|u| t.uids.blocked(u, l.max_failures_per_uid, l.window, now));
        let wait_addr = address.and_then(|a| {
            t.addresses
                .blocked(&a, l.max_failures_per_address, l.window, now)
        });
        if let Some(wait) = wait_uid.into_iter().chain(wait_addr).max() {
            return Err(wait);
        }
        if let Some(u) = &uid {
            t.uids.charge(u, l.window, now, l.max_tracked);
        }
        if let Some(a) = &address {
            t.addresses.charge(a, l.window, now, l.max_tracked);
        }
        Ok(Attempt { uid, address })
    }

    /// Settles an attempt charged by [`Throttle::begin`].
    pub fn finish(&self, attempt: Attempt, outcome: Outcome) {
        let mut t = self.tables();
        match outcome {
            Outcome::Failure => {}
            Outcome::Success => {
                if let Some(u) = &attempt.uid {
                    t.uids.reset(u);
                }
                if let Some(a) = &attempt.address {
                    t.addresses.refund(a);
                }
            }
            Outcome::Neutral => {
                if let Some(u) = &attempt.uid {
                    t.uids.refund(u);
                }
                if let Some(a) = &attempt.address {
                    t.addresses.refund(a);
                }
            }
        }
    }

    /// Keys tracked now (uids, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        let t = self.tables();
        (t.uids.map.len(), t.addresses.map.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginThrottle {
        LoginThrottle {
            max_failures_per_uid: 3,
            max_failures_per_address: 5,
            window: Duration::from_secs(60),
            max_tracked: 4,
        }
    }

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn uid_limit_retry_after_and_reset_on_success() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..3 {
            let a = t.begin_at(Some("alice"), ip(i), now).unwrap();
            t.finish(a, Outcome::Failure);
        }
        // Fourth attempt on the same uid, from yet another address: refused for the window.
        let wait = t
            .begin_at(Some("alice"), ip(9), now + Duration::from_millis(10_500))
            .unwrap_err();
        assert_eq!(wait, 50);
        // Another uid is not affected.
        assert!(t.begin_at(Some("bob"), ip(9), now).is_ok());
        // After the window, alice may try again; a success resets her counter.
        let later = now + Duration::from_secs(61);
        let a = t.begin_at(Some("alice"), ip(1), later).unwrap();
        t.finish(a, Outcome::Failure);
        let a = t.begin_at(Some("alice"), ip(1), later).unwrap();
        t.finish(a, Outcome::Success);
        for _ in 0..3 {
            let a = t.begin_at(Some("alice"), ip(2), later).unwrap();
            t.finish(a, Outcome::Failure);
        }
        assert!(t.begin_at(Some("alice"), ip(3), later).is_err());
    }

    #[test]
    fn address_limit_whatever_the_uids() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..5 {
            let a = t.begin_at(Some(&format!("u{i}")), ip(1), now).unwrap();
            t.finish(a, Outcome::Failure);
        }
        assert!(t.begin_at(Some("u9"), ip(1), now).is_err());
        assert!(t.begin_at(Some("u9"), ip(2), now).is_ok());
        // Invalid uids are throttled by address but never stored per uid.
        let t = Throttle::new(limits());
        for _ in 0..5 {
            let a = t.begin_at(Some("../keys/x"), ip(7), now).unwrap();
            t.finish(a, Outcome::Failure);
        }
        assert!(t.begin_at(Some("../keys/x"), ip(7), now).is_err());
        assert_eq!(t.tracked().0, 0);
    }

    #[test]
    fn neutral_outcomes_are_refunded_and_concurrent_attempts_are_charged() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for _ in 0..10 {
            let a = t.begin_at(Some("carol"), ip(1), now).unwrap();
            t.finish(a, Outcome::Neutral);
        }
        // Three attempts in flight at once use up carol's allowance before any finishes.
        let inflight: Vec<_> = (0..3)
            .map(|_| t.begin_at(Some("carol"), ip(1), now).unwrap())
            .collect();
        assert!(t.begin_at(Some("carol"), ip(1), now).is_err());
        for a in inflight {
            t.finish(a, Outcome::Failure);
        }
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..1000u32 {
            let uid = format!("user{i}");
            let addr = Some(IpAddr::from(std::net::Ipv4Addr::from(i)));
            if let Ok(a) = t.begin_at(Some(&uid), addr, now + Duration::from_millis(i.into())) {
                t.finish(a, Outcome::Failure);
            }
        }
        let (uids, addrs) = t.tracked();
        assert!(uids <= 4 && addrs <= 4, "{uids} uids, {addrs} addresses");
    }
}
