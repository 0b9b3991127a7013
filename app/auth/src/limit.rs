//! The login attempt limiter: failed sign-ins are counted per username and per client address,
//! and an attempt over either budget is refused with the time until the next one is allowed.
//!
//! Each key holds one instant (the generic cell rate algorithm): a budget of `burst` attempts
//! that refills by one every `interval`. An attempt is charged before Cognito is asked, so that
//! parallel requests cannot all slip past the check, and refunded when it succeeds or fails for
//! a reason that is not the user's (Cognito unavailable): only wrong passwords and codes count.
//!
//! Invariant: memory is bounded. Each map holds at most `max_tracked` keys; a key whose budget
//! is full again is the same as no key and is dropped first, and when every key is still
//! limited the one closest to free makes room.
//!
//! The state lives in this process. With several app tasks behind the load balancer each task
//! keeps its own counts, so an attacker spreading attempts over `n` tasks gets `n` times the
//! budget; Cognito's own threat protection still applies across all of them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One budget: `burst` attempts at once, one more every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Attempts allowed in a row.
    pub burst: u32,
    /// The time it takes to earn one attempt back.
    pub interval: Duration,
}

/// The budgets of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Failed attempts per username.
    pub per_user: Budget,
    /// Failed attempts per client address. A workshop behind one NAT shares it, so it is
    /// larger than the per-user budget.
    pub per_client: Budget,
    /// The most keys each map tracks.
    pub max_tracked: usize,
}

impl Default for LimitPolicy {
    fn default() -> LimitPolicy {
        LimitPolicy {
            per_user: Budget {
                burst: 5,
                interval: Duration::from_secs(60),
            },
            per_client: Budget {
                burst: 20,
                interval: Duration::from_secs(10),
            },
            max_tracked: 10_000,
        }
    }
}

/// An attempt refused because a budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-in attempts; try again in {} s", self.retry_after_secs())]
pub struct RateLimited {
    /// How long until the next attempt is allowed.
    pub retry_after: Duration,
}

impl RateLimited {
    /// [`RateLimited::retry_after`] in whole seconds, rounded up (never 0).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let rounded = if self.retry_after.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        rounded.max(1)
    }
}

/// A charged attempt; hand it back with [`LoginLimiter::refund`] when it did not fail.
#[derive(Debug)]
#[must_use = "refund the charge when the attempt succeeds"]
pub struct Charge {
    user: String,
    client: IpAddr,
}

/// Counts login attempts per username and client address.
#[derive(Debug)]
pub struct LoginLimiter {
    policy: LimitPolicy,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, Instant>,
    clients: HashMap<IpAddr, Instant>,
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter::new(LimitPolicy::default())
    }
}

impl LoginLimiter {
    /// A limiter with the given budgets.
    pub fn new(policy: LimitPolicy) -> LoginLimiter {
        LoginLimiter {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// Charges one attempt of `username` from `client` at `now`, or says how long to wait.
    /// Neither budget is charged when either is spent.
    pub fn charge(
        &self,
        username: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<Charge, RateLimited> {
        let user = user_key(username);
        let mut state = self.lock();
        let user_wait = wait(&state.users, &user, self.policy.per_user, now);
        let client_wait = wait(&state.clients, &client, self.policy.per_client, now);
        if let Some(retry_after) = user_wait.max(client_wait) {
            return Err(RateLimited { retry_after });
        }
        let max_tracked = self.policy.max_tracked;
        take(
            &mut state.users,
            user.clone(),
            self.policy.per_user,
            now,
            max_tracked,
        );
        take(
            &mut state.clients,
            client,
            self.policy.per_client,
            now,
            max_tracked,
        );
        Ok(Charge { user, client })
    }

    /// Gives a charged attempt back (it succeeded, or failed for a reason that is not a wrong
    /// password or code).
    pub fn refund(&self, charge: Charge, now: Instant) {
        let mut state = self.lock();
        give_back(&mut state.users, &charge.user, self.policy.per_user, now);
        give_back(
            &mut state.clients,
            &charge.client,
            self.policy.per_client,
            now,
        );
    }

    /// How many keys are tracked (usernames, client addresses); for tests of the bound.
    pub fn tracked(&self) -> (usize, usize) {
        let state = self.lock();
        (state.users.len(), state.clients.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a pair of maps updated in one step; a panic elsewhere cannot leave it
        // half-written, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Usernames are case-insensitive in the app's pool, so `Alice` and `alice` share a budget.
fn user_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// The instant after which the budget is full again is `tat` (theoretical arrival time); an
/// attempt is allowed while `tat - now` stays within `(burst - 1) * interval`.
fn tolerance(budget: Budget) -> Duration {
    budget.interval * budget.burst.saturating_sub(1)
}

fn wait<K: Hash + Eq>(
    map: &HashMap<K, Instant>,
    key: &K,
    budget: Budget,
    now: Instant,
) -> Option<Duration> {
    if budget.burst == 0 {
        return Some(budget.interval);
    }
    let tat = (*map.get(key)?).max(now);
    let ahead = tat - now;
    let tolerance = tolerance(budget);
    (ahead > tolerance).then(|| ahead - tolerance)
}

fn take<K: Hash + Eq + Clone>(
    map: &mut HashMap<K, Instant>,
    key: K,
    budget: Budget,
    now: Instant,
    max_tracked: usize,
) {
    if !map.contains_key(&key) && map.len() >= max_tracked {
        make_room(map, now);
    }
    let tat = map.get(&key).map_or(now, |tat| (*tat).max(now));
    map.insert(key, tat + budget.interval);
}

fn give_back<K: Hash + Eq>(map: &mut HashMap<K, Instant>, key: &K, budget: Budget, now: Instant) {
    if let Some(tat) = map.get_mut(key) {
        let earlier = tat.checked_sub(budget.interval).unwrap_or(now);
        if earlier <= now {
            map.remove(key);
        } else {
            *tat = earlier;
        }
    }
}

/// Drops every key whose budget is full again; if none is, the one closest to full.
fn make_room<K: Hash + Eq + Clone>(map: &mut HashMap<K, Instant>, now: Instant) {
    let before = map.len();
    map.retain(|_, tat| *tat > now);
    if map.len() < before {
        return;
    }
    let closest = map
        .iter()
        .min_by_key(|(_, tat)| **tat)
        .map(|(key, _)| key.clone());
    if let Some(key) = closest {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_IP: &str = "203.0.113.7";

    fn limiter(user_burst: u32, client_burst: u32, max_tracked: usize) -> LoginLimiter {
        LoginLimiter::new(LimitPolicy {
            per_user: Budget {
                burst: user_burst,
                interval: Duration::from_secs(60),
            },
            per_client: Budget {
                burst: client_burst,
                interval: Duration::from_secs(10),
            },
            max_tracked,
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    /// Charges `username` from `client` at `start + at_secs`; the outcome is `Ok` or the wait
    /// in whole seconds.
    fn attempt(
        limiter: &LoginLimiter,
        start: Instant,
        at_secs: u64,
        username: &str,
        client: &str,
    ) -> Result<(), u64> {
        limiter
            .charge(username, ip(client), start + Duration::from_secs(at_secs))
            .map(drop)
            .map_err(|limited| limited.retry_after_secs())
    }

    #[test]
    fn user_budget_then_wait() {
        let limiter = limiter(3, 100, 100);
        let start = Instant::now();
        for _ in 0..3 {
            attempt(&limiter, start, 0, "alice", ALICE_IP).expect("within budget");
        }
        assert_eq!(
            attempt(&limiter, start, 0, "alice", ALICE_IP).err(),
            Some(60)
        );
        // Case and surrounding spaces do not make a new user.
        assert_eq!(
            attempt(&limiter, start, 1, " ALICE ", ALICE_IP).err(),
            Some(59)
        );
        // Another user from the same address is not affected.
        attempt(&limiter, start, 1, "bob", ALICE_IP).expect("bob has his own budget");
        // One attempt is earned back per interval.
        attempt(&limiter, start, 60, "alice", ALICE_IP).expect("refilled one");
        assert_eq!(
            attempt(&limiter, start, 60, "alice", ALICE_IP).err(),
            Some(60)
        );
    }

    #[test]
    fn client_budget_covers_every_username() {
        let limiter = limiter(100, 2, 100);
        let start = Instant::now();
        attempt(&limiter, start, 0, "a", ALICE_IP).expect("first");
        attempt(&limiter, start, 0, "b", ALICE_IP).expect("second");
        assert_eq!(attempt(&limiter, start, 0, "c", ALICE_IP).err(), Some(10));
        attempt(&limiter, start, 0, "c", "198.51.100.1").expect("another address");
    }

    #[test]
    fn refused_attempts_charge_nothing() {
        let limiter = limiter(1, 100, 100);
        let start = Instant::now();
        attempt(&limiter, start, 0, "alice", ALICE_IP).expect("first");
        for _ in 0..50 {
            assert!(attempt(&limiter, start, 0, "alice", ALICE_IP).is_err());
        }
        // Hammering did not push the next allowed attempt further out.
        attempt(&limiter, start, 60, "alice", ALICE_IP).expect("after one interval");
    }

    #[test]
    fn refunds_give_the_attempt_back() {
        let limiter = limiter(2, 100, 100);
        let start = Instant::now();
        for _ in 0..10 {
            let charge = limiter
                .charge("alice", ip(ALICE_IP), start)
                .expect("allowed");
            limiter.refund(charge, start);
        }
        assert_eq!(limiter.tracked(), (0, 0), "a full budget is not tracked");
        attempt(&limiter, start, 0, "alice", ALICE_IP).expect("first");
        attempt(&limiter, start, 0, "alice", ALICE_IP).expect("second");
        assert!(attempt(&limiter, start, 0, "alice", ALICE_IP).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = limiter(5, 5, 100);
        let start = Instant::now();
        for n in 0..10_000u32 {
            let [a, b, c, d] = n.to_be_bytes();
            let client = IpAddr::from([10, b, c, d.wrapping_add(a)]);
            let _ = limiter.charge(&format!("user{n}"), client, start);
        }
        let (users, clients) = limiter.tracked();
        assert!(
            users <= 100 && clients <= 100,
            "{users} users, {clients} clients"
        );
    }

    #[test]
    fn retry_after_rounds_up() {
        let limited = |millis| RateLimited {
            retry_after: Duration::from_millis(millis),
        };
        assert_eq!(limited(1).retry_after_secs(), 1);
        assert_eq!(limited(1000).retry_after_secs(), 1);
        assert_eq!(limited(1001).retry_after_secs(), 2);
        assert_eq!(
            limited(42_000).to_string(),
            "too many sign-in attempts; try again in 42 s"
        );
    }
}
