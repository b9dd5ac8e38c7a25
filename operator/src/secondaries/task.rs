//! The secondaries task: feeds the [`Tracker`] with what the Zone controller says each
//! zone's secondaries should serve, carries out its commands (at most [`CONCURRENCY`] at
//! once, each bounded by a timeout, so a secondary that hangs stalls nothing), and hands
//! its reports to the [`SecondariesHost`].

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{Semaphore, mpsc, watch},
    time::Instant,
};

use super::{
    Command, Outcome, SecondariesHost, Tracker, Update,
    wire::{notify, serial},
};
use crate::metrics::Metrics;

/// Commands in flight at once.
pub const CONCURRENCY: usize = 32;
/// How long one secondary may take to answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest sleep between two looks at what is due.
const IDLE: Duration = Duration::from_secs(1);

/// Runs until the update channel closes. While this replica does not lead it forgets
/// everything and sends nothing: the leader's reconciles tell it again.
pub async fn run(
    host: Arc<dyn SecondariesHost>,
    metrics: Arc<Metrics>,
    leading: watch::Receiver<bool>,
    mut updates: mpsc::UnboundedReceiver<Update>,
) {
    let mut tracker = Tracker::default();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let (done_tx, mut done) = mpsc::unbounded_channel();
    loop {
        let now = Instant::now().into_std();
        if !*leading.borrow() {
            tracker = Tracker::default();
        }
        for command in tracker.due(now) {
            let permits = Arc::clone(&permits);
            let done_tx = done_tx.clone();
            let metrics = Arc::clone(&metrics);
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let (zone, address, outcome) = execute(command, &metrics).await;
                let _ = done_tx.send((zone, address, outcome));
            });
        }
        let wake = tracker
            .next_due()
            .map_or(IDLE, |at| at.saturating_duration_since(now).min(IDLE));
        tokio::select! {
            update = updates.recv() => match update {
                Some(Update::Set(zone)) => {
                    if let Some(report) = tracker.set(zone, Instant::now().into_std()) {
                        host.report(report);
                    }
                }
                Some(Update::Remove(zone)) => tracker.remove(&zone),
                None => return,
            },
            Some((zone, address, outcome)) = done.recv() => {
                for report in tracker.record(&zone, address, outcome, Instant::now().into_std()) {
                    host.report(report);
                }
            }
            () = tokio::time::sleep(wake) => {}
        }
    }
}

async fn execute(
    command: Command,
    metrics: &Metrics,
) -> (crate::zone::ObjectKey, std::net::SocketAddr, Outcome) {
    match command {
        Command::Notify {
            zone,
            origin,
            address,
            key,
        } => {
            let result = notify(address, &origin, key.as_ref(), ANSWER_TIMEOUT).await;
            metrics.secondary_notify(result.is_ok());
            let outcome = Outcome::Notified(result.map_err(|e| e.to_string()));
            (zone, address, outcome)
        }
        Command::Probe {
            zone,
            origin,
            address,
        } => {
            let result = serial(address, &origin, ANSWER_TIMEOUT).await;
            let outcome = Outcome::Probed(result.map_err(|e| e.to_string()));
            (zone, address, outcome)
        }
    }
}
