//! Changes to operations, heard from Postgres (`LISTEN corral_operations`,
//! sent by the queue's triggers) and handed to every watcher in this
//! process: the progress a browser or API client sees comes through the
//! database, so it does not matter which replica runs the operation.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{broadcast, oneshot};
use uuid::Uuid;

use crate::workers::operations::CHANNEL;

/// The ids of operations as they change.
#[derive(Clone)]
pub struct OperationEvents {
    tx: broadcast::Sender<Uuid>,
    /// Dropped with the last clone: the listener then stops and gives its
    /// connection back to the pool (a server that is gone, a test that
    /// ended).
    _alive: Arc<oneshot::Sender<()>>,
}

impl OperationEvents {
    /// Listens on `db` for as long as these events are held anywhere,
    /// reconnecting after a lost connection (watchers also look every 2 s
    /// meanwhile).
    pub fn start(db: PgPool) -> Self {
        let (tx, _) = broadcast::channel(1024);
        let (alive, mut gone) = oneshot::channel::<()>();
        let sender = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut gone => return,
                    // A pool that is closing (a test ending, a server
                    // stopping) waits for this connection: give it back.
                    () = closed(&db) => return,
                    r = listen(&db, &sender) => if let Err(e) = r {
                        tracing::debug!(error = %e, "operation events: listening stopped; retrying");
                    },
                }
                tokio::select! {
                    _ = &mut gone => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Self {
            tx,
            _alive: Arc::new(alive),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }
}

/// Resolves once `db` is being closed.
async fn closed(db: &PgPool) {
    while !db.is_closed() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Forwards notifications until the connection fails.
async fn listen(db: &PgPool, tx: &broadcast::Sender<Uuid>) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(db).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let n = listener.recv().await?;
        if let Ok(id) = Uuid::parse_str(n.payload()) {
            // No watcher is no error.
            let _ = tx.send(id);
        }
    }
}
