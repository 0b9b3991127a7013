//! Fair sharing of one task's model calls: a ceiling on the calls in flight of every run this
//! process executes together, each user with running runs entitled to an equal share of it, and
//! each of a user's running runs to an equal part of the user's share, so one user's runs at
//! full quota (several runs) cannot take more of a task's outbound connections than a user with
//! one run.
//!
//! Depends on the engine's provider trait only (a run's model clients are wrapped in
//! [`FairProvider`]); it must not depend on routes, sessions or the store.
//!
//! Invariants: the calls in flight of all runs never pass the ceiling; a run may start a call
//! while it holds fewer than `ceiling / users with running runs / that user's running runs` (at
//! least one), so when a run joins, the others give up calls as theirs end rather than being
//! interrupted; waiting for a share counts toward the call's attempt timeout, like any slow
//! call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use engine::providers::{BoxFuture, GenerateRequest, Generation, ModelProvider, ProviderError};
use engine::runner::EvalPlan;
use tokio::sync::Notify;

/// The model calls in flight of the runs of one process.
#[derive(Debug)]
pub struct FairShare {
    ceiling: usize,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Owner and calls in flight per running run.
    in_flight: HashMap<u64, (String, usize)>,
    total: usize,
    next_id: u64,
}

impl State {
    /// How many calls the run `id` may hold now: an equal part of its owner's equal share.
    fn share_of(&self, ceiling: usize, id: u64) -> usize {
        let Some((owner, _)) = self.in_flight.get(&id) else {
            return 1;
        };
        let mut owners: Vec<&str> = self
            .in_flight
            .values()
            .map(|(owner, _)| owner.as_str())
            .collect();
        owners.sort_unstable();
        owners.dedup();
        let runs_of_owner = self
            .in_flight
            .values()
            .filter(|(other, _)| other == owner)
            .count();
        (ceiling / owners.len().max(1) / runs_of_owner.max(1)).max(1)
    }
}

impl FairShare {
    /// A pool of `ceiling` calls in flight (at least 1).
    pub fn new(ceiling: usize) -> Arc<FairShare> {
        Arc::new(FairShare {
            ceiling: ceiling.max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        })
    }

    /// The ceiling.
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls in flight now, all runs together.
    pub fn in_flight(&self) -> usize {
        self.lock().total
    }

    /// A running run's place in the pool (as one of `owner`'s runs), for as long as it is kept.
    pub fn join(self: &Arc<FairShare>, owner: &str) -> Arc<RunShare> {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.in_flight.insert(id, (owner.to_string(), 0));
        drop(state);
        // The others' shares just shrank; nothing to wake.
        Arc::new(RunShare {
            pool: self.clone(),
            id,
        })
    }
}

/// One run's place in a [`FairShare`]; leaving when dropped.
#[derive(Debug)]
pub struct RunShare {
    pool: Arc<FairShare>,
    id: u64,
}

impl RunShare {
    /// Waits until this run may start one more call; the permit ends it.
    pub async fn acquire(self: &Arc<RunShare>) -> Permit {
        loop {
            let notified = self.pool.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.pool.lock();
                let share = state.share_of(self.pool.ceiling, self.id);
                let mine = state.in_flight.get(&self.id).map_or(0, |(_, count)| *count);
                if state.total < self.pool.ceiling && mine < share {
                    state.total += 1;
                    if let Some((_, count)) = state.in_flight.get_mut(&self.id) {
                        *count += 1;
                    }
                    return Permit { run: self.clone() };
                }
            }
            notified.await;
        }
    }
}

impl Drop for RunShare {
    fn drop(&mut self) {
        self.pool.lock().in_flight.remove(&self.id);
        // Fewer runs: bigger shares for the others.
        self.pool.changed.notify_waiters();
    }
}

/// One call in flight of a run.
#[derive(Debug)]
pub struct Permit {
    run: Arc<RunShare>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut state = self.run.pool.lock();
            state.total = state.total.saturating_sub(1);
            if let Some((_, count)) = state.in_flight.get_mut(&self.run.id) {
                *count = count.saturating_sub(1);
            }
        }
        self.run.pool.changed.notify_waiters();
    }
}

/// A model provider whose calls take a permit of their run's share first.
struct FairProvider {
    inner: Arc<dyn ModelProvider>,
    share: Arc<RunShare>,
}

impl ModelProvider for FairProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn cache_scope(&self) -> String {
        self.inner.cache_scope()
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
    ) -> BoxFuture<'a, Result<Generation, ProviderError>> {
        Box::pin(async move {
            let _permit = self.share.acquire().await;
            self.inner.generate(request).await
        })
    }
}

/// `plan` (a run of `owner`) with every model and judge call taking a permit of one new share
/// of `pool` (the share ends when the returned plan is dropped, with the run).
pub fn shared_plan(plan: &EvalPlan, pool: &Arc<FairShare>, owner: &str) -> EvalPlan {
    let share = pool.join(owner);
    let mut plan = plan.clone();
    for client in plan.models.iter_mut().chain(plan.judges.iter_mut()) {
        client.provider = Arc::new(FairProvider {
            inner: client.provider.clone(),
            share: share.clone(),
        });
    }
    plan
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn pending<T>(future: impl std::future::Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_run_joining_gets_an_equal_share_as_the_others_calls_end() {
        let pool = FairShare::new(4);
        let a = pool.join("alice");
        let mut a_permits = Vec::new();
        for _ in 0..4 {
            a_permits.push(a.acquire().await);
        }
        assert_eq!(pool.in_flight(), 4);
        assert!(pending(a.acquire()).await, "over the ceiling");
        let b = pool.join("bob");
        assert!(
            pending(b.acquire()).await,
            "the ceiling holds while a's calls run"
        );
        // One of a's calls ends: b, under its share of 2, gets the place; a, over it, waits.
        a_permits.pop();
        let b_first = b.acquire().await;
        assert_eq!(pool.in_flight(), 4);
        a_permits.pop();
        assert!(pending(a.acquire()).await, "a holds 2, its share");
        let b_second = b.acquire().await;
        assert!(pending(b.acquire()).await, "b holds 2, its share");
        // b leaves: a's share is the whole pool again.
        drop((b_first, b_second, b));
        let _again = a.acquire().await;
        let _more = a.acquire().await;
        assert_eq!(pool.in_flight(), 4);
    }

    #[tokio::test]
    async fn a_waiting_call_starts_when_a_permit_is_dropped() {
        let pool = FairShare::new(1);
        let run = pool.join("alice");
        let first = run.acquire().await;
        let waiting = {
            let run = run.clone();
            tokio::spawn(async move { run.acquire().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pool.in_flight(), 1);
        drop(second);
        assert_eq!(pool.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_user_with_three_runs_holds_one_users_share_not_three() {
        let pool = FairShare::new(12);
        let runs: Vec<_> = (0..3).map(|_| pool.join("alice")).collect();
        let bob = pool.join("bob");
        // Alice's three runs share half the pool (6): two calls each.
        let mut held = Vec::new();
        for run in &runs {
            held.push(run.acquire().await);
            held.push(run.acquire().await);
            assert!(pending(run.acquire()).await, "a run of alice over 2");
        }
        // Bob's one run gets the other half.
        for _ in 0..6 {
            held.push(bob.acquire().await);
        }
        assert!(pending(bob.acquire()).await, "bob over 6");
        assert_eq!(pool.in_flight(), 12);
        // Alice's runs end: bob's share is the whole pool.
        drop(runs);
        held.drain(..6);
        for _ in 0..6 {
            held.push(bob.acquire().await);
        }
        assert_eq!(pool.in_flight(), 12);
    }
}
