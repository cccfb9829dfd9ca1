//! The thread that owns the embedded store's one connection. Every operation is a job
//! sent to it and answered through a oneshot channel, in the order the jobs were sent.
//!
//! One thread of its own rather than tokio's blocking pool behind a mutex: a job (a
//! batch's resolution above all) allocates tens of megabytes, and the allocator gives
//! each thread that allocates an arena of its own and keeps every arena at its peak, so
//! spread over the pool's threads the hub's resident memory grew with the number of
//! threads that had run a batch. One thread also serves waiting callers in the order
//! they came, which a mutex does not promise.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The connection's thread; dropping the last handle lets it finish the jobs sent and
/// close the connection, and waits for that.
#[derive(Debug)]
pub(super) struct Worker {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Moves the connection to a new thread.
    pub(super) fn start(mut connection: Connection) -> Result<Worker, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("embedded-store".to_owned())
            .spawn(move || {
                for job in queue {
                    job(&mut connection);
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the embedded store's thread: {e}")))?;
        Ok(Worker {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `work` on the connection, after the jobs sent before it.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        // The work's spans (resolution's) belong to the caller's trace.
        let span = tracing::Span::current();
        let job: Job = Box::new(move |connection| {
            let _entered = span.enter();
            // A panic cannot leave a transaction open (rusqlite rolls back when a
            // `Transaction` is dropped, unwinding included): the connection is still sound
            // and the thread goes on with the next job.
            let result = catch_unwind(AssertUnwindSafe(|| work(connection))).unwrap_or_else(|panic| {
                Err(StoreError::Internal(format!(
                    "embedded store task failed: {}",
                    panic_message(panic.as_ref())
                )))
            });
            // The caller may have gone (its request cancelled); the work is done anyway.
            let _ = answer.send(result);
        });
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Unavailable("the embedded store's thread has stopped".to_owned()))?;
        answered
            .await
            .map_err(|_| StoreError::Internal("the embedded store's thread dropped a job".to_owned()))?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            // The last handle may go inside a job (a closure holding a clone of the
            // store): the thread ends by itself after that job and cannot wait for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panic_fails_only_its_own() {
        let worker = Worker::start(Connection::open_in_memory().expect("SQLite")).expect("the thread");
        worker
            .run(|c| {
                c.execute_batch("CREATE TABLE t (n INTEGER)")
                    .map_err(|e| StoreError::Internal(e.to_string()))
            })
            .await
            .expect("created");
        let sent: Vec<_> = (0..20)
            .map(|n| {
                worker.run(move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [n])
                        .map_err(|e| StoreError::Internal(e.to_string()))
                })
            })
            .collect();
        for inserted in futures_util::future::join_all(sent).await {
            inserted.expect("inserted");
        }
        let panicked = worker.run(|_| -> Result<(), StoreError> { panic!("boom") }).await;
        assert!(matches!(panicked, Err(StoreError::Internal(m)) if m.contains("boom")));
        let order: Vec<i64> = worker
            .run(|c| {
                let mut s = c
                    .prepare("SELECT n FROM t ORDER BY rowid")
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                let rows = s
                    .query_map([], |r| r.get(0))
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                rows.collect::<Result<_, _>>()
                    .map_err(|e| StoreError::Internal(e.to_string()))
            })
            .await
            .expect("read after the panic");
        assert_eq!(order, (0..20).collect::<Vec<i64>>(), "in the order sent");
    }
}
