//! Driving calls and measuring them: a closed loop (N callers, each sending its next
//! call when the last one is answered: the most a system serves) and an open loop
//! (calls started on a fixed schedule whatever the answers do; each latency is taken
//! from the call's scheduled start, so a stall counts against every call it delayed —
//! no coordinated omission). Percentiles by nearest rank over every call's latency,
//! failed calls included (a call that fails fast must not make the tail look better).
//!
//! Rates: the successful calls over the time from the phase's start to the last answer.
//! A closed loop sends no call after its deadline but waits for those in flight, and
//! counts them; its time runs to the last of them rather than to the deadline. Counting
//! them over the deadline alone would credit the rate with work done after it; leaving
//! them out would drop work done before it. Dividing by the time all the counted work
//! took is the figure that claims nothing that was not done (the tail, where fewer
//! callers are busy, lowers it by at most the callers' last calls).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

/// What one call came to.
pub enum Step {
    Done,
    Failed(String),
    /// Nothing left to send (the prepared records ran out): the caller stops.
    Exhausted,
}

/// The calls of one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Calls answered, failed ones included: the latencies behind the percentiles.
    pub calls: u64,
    /// Of those, the successful ones.
    pub done: u64,
    /// Failed calls (answered with an error, or whose task died).
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the start to the last answer.
    pub seconds: f64,
    /// Successful calls per second: `done` over `seconds`.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Open loop only: how late calls started after their scheduled start (tokio's
    /// timer wakes on whole milliseconds, and the task must then be run), p50 and p99.
    /// It is part of every latency above, for the hub and its baseline alike.
    pub send_lag_p50_ms: Option<f64>,
    pub send_lag_p99_ms: Option<f64>,
    /// The phase ended early: no more records to send.
    pub exhausted: bool,
}

#[derive(Default)]
struct Tally {
    /// Every answered call's latency, failed or not.
    micros: Vec<u64>,
    /// Open loop: each call's actual start less its scheduled start.
    lag_micros: Vec<u64>,
    done: u64,
    errors: u64,
    first_error: Option<String>,
    exhausted: bool,
    last_answer: Option<Instant>,
}

impl Tally {
    /// A call's outcome, started at `start` (or scheduled then) and answered at
    /// `answered`; a failure's latency runs to the failure, like a success's.
    fn add(&mut self, start: Instant, answered: Instant, step: Step) {
        let latency = answered.saturating_duration_since(start);
        if !matches!(step, Step::Exhausted) {
            self.last_answer = self.last_answer.max(Some(answered));
        }
        match step {
            Step::Done => {
                self.micros.push(micros(latency));
                self.done += 1;
            }
            Step::Failed(error) => {
                self.micros.push(micros(latency));
                self.fail(error);
            }
            Step::Exhausted => self.exhausted = true,
        }
    }

    /// A failure with no latency: the call's task died, its time is unknown.
    fn fail(&mut self, error: String) {
        self.errors += 1;
        self.first_error.get_or_insert(error);
    }

    fn merge(&mut self, other: Tally) {
        self.micros.extend(other.micros);
        self.lag_micros.extend(other.lag_micros);
        self.done += other.done;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.exhausted |= other.exhausted;
        self.last_answer = self.last_answer.max(other.last_answer);
    }

    /// The phase's figures; it started at `started`.
    fn summary(mut self, started: Instant) -> Summary {
        let elapsed = self
            .last_answer
            .map_or(Duration::ZERO, |last| last.saturating_duration_since(started));
        self.micros.sort_unstable();
        self.lag_micros.sort_unstable();
        let lag = |p: f64| (!self.lag_micros.is_empty()).then(|| percentile(&self.lag_micros, p));
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let at = |p: f64| percentile(&self.micros, p);
        Summary {
            calls: self.micros.len() as u64,
            done: self.done,
            errors: self.errors,
            first_error: self.first_error.clone(),
            seconds,
            rate: self.done as f64 / seconds,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: self.micros.last().map_or(0.0, |&m| m as f64 / 1000.0),
            send_lag_p50_ms: lag(0.50),
            send_lag_p99_ms: lag(0.99),
            exhausted: self.exhausted,
        }
    }
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

/// The `p` quantile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map_or(0.0, |&m| m as f64 / 1000.0)
}

/// `callers` tasks call `call(caller)` back to back for `duration` (or until the work
/// is exhausted).
pub async fn closed_loop<F, Fut>(callers: usize, duration: Duration, call: F) -> Summary
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Step> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = JoinSet::new();
    for caller in 0..callers {
        let call = call.clone();
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let step = call(caller).await;
                let exhausted = matches!(step, Step::Exhausted);
                tally.add(sent, Instant::now(), step);
                if exhausted {
                    break;
                }
            }
            tally
        });
    }
    let mut tally = Tally::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(caller) => tally.merge(caller),
            Err(e) => tally.fail(format!("a caller task failed: {e}")),
        }
    }
    tally.summary(started)
}

/// Calls `call(n)` for n = 0, 1, 2, … at `rate` calls a second for `duration`, each
/// started at its scheduled time whether earlier calls were answered or not, at most
/// `available` calls. The schedule is kept by tokio's timer, not by spinning (the
/// machine's two cores are the hub's and PostgreSQL's): each call starts up to about a
/// millisecond late, and that lag, counted in its latency, is measured on its own.
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, available: u64, call: F) -> Summary
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Step> + Send + 'static,
{
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let mut tasks = JoinSet::new();
    let mut tally = Tally::default();
    let mut n = 0u64;
    loop {
        let scheduled = started + interval.mul_f64(n as f64);
        if scheduled >= started + duration {
            break;
        }
        if n >= available {
            tally.exhausted = true;
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let call = call(n);
        tasks.spawn(async move {
            let lag = scheduled.elapsed();
            let step = call.await;
            (scheduled, lag, Instant::now(), step)
        });
        n += 1;
        // Collect what is answered as we go, so the set does not grow.
        while let Some(done) = tasks.try_join_next() {
            add_joined(&mut tally, done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        add_joined(&mut tally, done);
    }
    tally.summary(started)
}

type Answer = (Instant, Duration, Instant, Step);

/// A joined open-loop call: (scheduled, send lag, answered, step).
fn add_joined(tally: &mut Tally, done: Result<Answer, tokio::task::JoinError>) {
    match done {
        Ok((scheduled, lag, answered, step)) => {
            tally.lag_micros.push(micros(lag));
            tally.add(scheduled, answered, step);
        }
        Err(e) => tally.fail(format!("a call task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let micros: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile(&micros, 0.5), 500.0);
        assert_eq!(percentile(&micros, 0.99), 990.0);
        assert_eq!(percentile(&micros, 0.999), 999.0);
        assert_eq!(percentile(&[7000], 0.999), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[tokio::test]
    async fn the_open_loop_keeps_its_schedule_and_counts_from_it() {
        // Calls that take 30 ms, at 200 a second: a closed loop would send one at a time;
        // the open loop keeps sending, and each latency is about 30 ms.
        let summary = open_loop(200.0, Duration::from_millis(300), u64::MAX, |_| async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Step::Done
        })
        .await;
        assert_eq!(summary.calls, 60);
        assert!(summary.p50_ms >= 30.0 && summary.p50_ms < 80.0, "{summary:?}");
        let lag = summary.send_lag_p99_ms.expect("an open loop measures its send lag");
        assert!(lag < summary.p50_ms, "{summary:?}");
        let limited = open_loop(1000.0, Duration::from_secs(10), 5, |_| async { Step::Done }).await;
        assert_eq!(limited.calls, 5);
        assert!(limited.exhausted);
    }

    #[tokio::test]
    async fn a_closed_loop_rate_is_its_calls_over_the_time_they_took() {
        // 4 callers, calls of 250 ms, 300 ms: each sends two calls (at 0 and 250 ms),
        // the last answered at ~500 ms: 8 calls in ~0.5 s, 16 a second, which is what
        // four callers at 250 ms a call do.
        let summary = closed_loop(4, Duration::from_millis(300), |_| async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            Step::Done
        })
        .await;
        assert_eq!(summary.done, 8, "{summary:?}");
        assert!(summary.seconds >= 0.5 && summary.seconds < 0.6, "{summary:?}");
        assert!(summary.rate > 13.0 && summary.rate <= 16.0, "{summary:?}");
        assert_eq!(summary.send_lag_p99_ms, None);
    }

    #[tokio::test]
    async fn failed_calls_count_in_the_percentiles_not_in_the_rate() {
        // Every other call fails at once, the others take 20 ms: the failures' latencies
        // are there (p50 is a fast failure), and only the successes make the rate.
        let summary = open_loop(100.0, Duration::from_millis(200), u64::MAX, |n| async move {
            if n % 2 == 0 {
                return Step::Failed("refused".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            Step::Done
        })
        .await;
        assert_eq!(
            (summary.calls, summary.done, summary.errors),
            (20, 10, 10),
            "{summary:?}"
        );
        assert!(summary.p50_ms < 20.0, "{summary:?}");
        assert!(summary.p99_ms >= 20.0, "{summary:?}");
        assert_eq!(summary.first_error.as_deref(), Some("refused"));
    }
}
