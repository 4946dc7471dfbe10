//! The lcores of a running data plane, launched once and stopped once: the first worker
//! runs on the main lcore (in the caller's thread, [`Lcores::run_main`]), the others on
//! remote lcores (`rte_eal_remote_launch`). [`Lcores::stop`] raises the stop flag, drops
//! the main lcore's worker if it never ran, waits for every remote lcore and collects every
//! worker's report. Only [`super::Runtime`] holds an `Lcores`, beside the [`Eal`] it was
//! launched on, and stops it before the ports, the pool and the EAL go (on every path:
//! its `Drop` calls the same stop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use crate::dpdk::{DpdkError, Eal};
use crate::lcore::{Worker, WorkerReport};

/// The workers of every lcore (see the module documentation).
pub(super) struct Lcores {
    stop: Arc<AtomicBool>,
    /// The main lcore's worker until it runs (or is dropped by a stop).
    main: Option<Worker>,
    main_report: Option<WorkerReport>,
    /// Remote lcores launched and not yet waited for.
    remote: Vec<u32>,
    reports_tx: Option<Sender<WorkerReport>>,
    reports: Receiver<WorkerReport>,
}

impl Lcores {
    /// Launches every worker of `workers` (lcore id, worker) but the first on its remote
    /// lcore of `eal`, each after its gratuitous ARP; the first waits for
    /// [`Lcores::run_main`]. The workers stop when `stop` is raised. On a failed launch
    /// the lcores already launched are stopped before the error is returned.
    pub(super) fn launch(eal: &Eal, stop: Arc<AtomicBool>, workers: Vec<(u32, Worker)>) -> Result<Self, DpdkError> {
        let (tx, reports) = channel();
        let mut workers = workers.into_iter();
        let mut me = Lcores {
            stop,
            main: workers.next().map(|(_, w)| w),
            main_report: None,
            remote: Vec::new(),
            reports_tx: Some(tx.clone()),
            reports,
        };
        for (lcore, mut w) in workers {
            let tx = tx.clone();
            w.announce();
            // The receiver outlives every worker: `stop` waits for them before it reads.
            let launched = eal.launch(
                lcore,
                Box::new(move || {
                    let _ = tx.send(w.run());
                    0
                }),
            );
            if let Err(e) = launched {
                let _ = me.stop(eal);
                return Err(e);
            }
            me.remote.push(lcore);
        }
        Ok(me)
    }

    /// Runs the main lcore's worker in this thread until the stop flag is raised (at most
    /// once).
    pub(super) fn run_main(&mut self) {
        if let Some(mut w) = self.main.take() {
            w.announce();
            self.main_report = Some(w.run());
        }
    }

    /// Stops every lcore (see the module documentation); returns the workers' reports by
    /// lcore and a remote lcore that ended abnormally, if any. A second call returns
    /// nothing.
    pub(super) fn stop(&mut self, eal: &Eal) -> (Vec<WorkerReport>, Option<u32>) {
        self.stop.store(true, Ordering::Relaxed);
        self.main = None;
        let mut failed = None;
        for lcore in self.remote.drain(..) {
            match eal.wait(lcore) {
                Ok(0) => {}
                Ok(_) | Err(_) => failed = Some(lcore),
            }
        }
        self.reports_tx = None;
        let mut reports: Vec<WorkerReport> = self.main_report.take().into_iter().chain(self.reports.try_iter()).collect();
        reports.sort_by_key(|r| r.lcore);
        (reports, failed)
    }
}
