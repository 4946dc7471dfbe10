//! The DPDK Environment Abstraction Layer: one-time initialisation, lcore launch and
//! wait, TSC clock helpers, and the live-object accounting that keeps
//! `rte_eal_cleanup` from unmapping memory still in use.

use std::ffi::{c_char, c_int, c_void, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use dpdk_sys as sys;

use super::DpdkError;

/// `rte_lcore_id()` of a thread that is not an EAL lcore.
pub const LCORE_ID_ANY: u32 = sys::STRAIT_LCORE_ID_ANY;

const STATE_UNINIT: u8 = 0;
const STATE_INITIALIZING: u8 = 1;
const STATE_RUNNING: u8 = 2;
/// Initialisation failed or `rte_eal_cleanup` ran: DPDK cannot be initialised again.
const STATE_DONE: u8 = 3;

static EAL_STATE: AtomicU8 = AtomicU8::new(STATE_UNINIT);
/// Mempools and ports alive (or leaked); `rte_eal_cleanup` only runs when this is 0.
static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// Registers a new DPDK object (mempool, port) that needs EAL memory; fails unless the
/// EAL is running. Pair with [`release_object`].
///
/// The counter is raised *before* the state is checked and [`Eal`]'s drop moves the
/// state *before* reading the counter (both `SeqCst`), so either the creator sees the
/// EAL going away or the EAL sees the new object and skips cleanup.
pub(crate) fn acquire_object() -> Result<(), DpdkError> {
    LIVE_OBJECTS.fetch_add(1, Ordering::SeqCst);
    if EAL_STATE.load(Ordering::SeqCst) == STATE_RUNNING {
        Ok(())
    } else {
        LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
        Err(DpdkError::EalNotRunning)
    }
}

/// Unregisters an object registered with [`acquire_object`].
pub(crate) fn release_object() {
    LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
}

/// Fails unless the EAL is running (for calls that create no lasting object).
pub(crate) fn ensure_running() -> Result<(), DpdkError> {
    if EAL_STATE.load(Ordering::SeqCst) == STATE_RUNNING {
        Ok(())
    } else {
        Err(DpdkError::EalNotRunning)
    }
}

/// The initialised EAL. At most one exists per process, on the thread that created it
/// (the main lcore): it is neither `Send` nor `Sync`, because `rte_eal_remote_launch`
/// and `rte_eal_cleanup` must be called from the main lcore.
///
/// Dropping it waits for all worker lcores and calls `rte_eal_cleanup`, unless a
/// [`super::Mempool`] or [`super::Port`] is still alive (then cleanup is skipped and
/// logged: unmapping memory in use would be unsound).
#[derive(Debug)]
pub struct Eal {
    _main_lcore_only: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises DPDK with `args`, the full EAL command line including the program
    /// name in `args[0]` (a name is supplied when `args` is empty), e.g.
    /// `["strait", "-l", "0-1", "--in-memory", "--vdev", "net_tap0"]`.
    ///
    /// Only the first call in a process can succeed; any later call (even after this
    /// one failed or its `Eal` was dropped) returns [`DpdkError::AlreadyInitialized`].
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        if args.is_empty() {
            owned.push(c"strait".to_owned());
        }
        for a in args {
            owned.push(CString::new(a.as_str()).map_err(|_| {
                DpdkError::InvalidArgument(format!("EAL argument {a:?} contains a NUL byte"))
            })?);
        }
        let argc = c_int::try_from(owned.len())
            .map_err(|_| DpdkError::InvalidArgument("too many EAL arguments".to_owned()))?;

        if EAL_STATE
            .compare_exchange(
                STATE_UNINIT,
                STATE_INITIALIZING,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
        {
            return Err(DpdkError::AlreadyInitialized);
        }

        // rte_eal_init may keep pointers into argv (and permutes the array), so the
        // strings and the array are leaked: this happens once per process.
        let argv: &'static mut [*mut c_char] =
            Vec::leak(owned.into_iter().map(CString::into_raw).collect::<Vec<_>>());
        // SAFETY: argv holds argc valid, NUL-terminated, heap-allocated strings that are
        // never freed; the EAL_STATE compare-exchange above guarantees this is the only
        // rte_eal_init call in the process.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let err = DpdkError::last("rte_eal_init");
            EAL_STATE.store(STATE_DONE, Ordering::SeqCst);
            return Err(err);
        }
        EAL_STATE.store(STATE_RUNNING, Ordering::SeqCst);
        Ok(Eal {
            _main_lcore_only: PhantomData,
        })
    }

    /// Whether an EAL is currently running in this process.
    pub fn is_running() -> bool {
        EAL_STATE.load(Ordering::SeqCst) == STATE_RUNNING
    }

    /// The main lcore (the one `init` ran on).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised (self exists); rte_get_main_lcore reads config.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Number of enabled lcores, main included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: the EAL is initialised (self exists); rte_lcore_count reads config.
        unsafe { sys::rte_lcore_count() }
    }

    /// The enabled worker lcores (every enabled lcore except the main one), ascending.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = u32::MAX; // rte_get_next_lcore(-1, ...) starts from lcore 0.
        loop {
            // SAFETY: the EAL is initialised; rte_get_next_lcore takes any index and
            // returns RTE_MAX_LCORE when there is no further enabled lcore.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::STRAIT_MAX_LCORE {
                return out;
            }
            out.push(i);
        }
    }

    fn check_worker(&self, lcore: u32) -> Result<(), DpdkError> {
        if self.worker_lcores().contains(&lcore) {
            Ok(())
        } else {
            Err(DpdkError::InvalidArgument(format!(
                "lcore {lcore} is not an enabled worker lcore"
            )))
        }
    }

    /// Runs `f` on worker lcore `lcore` (`rte_eal_remote_launch`). The lcore must be
    /// idle: launching on a busy lcore fails with `EBUSY`. A panic in `f` is caught on
    /// the lcore, logged, and reported as return value -1.
    pub fn launch(&self, lcore: u32, f: Box<dyn FnOnce() -> i32 + Send>) -> Result<(), DpdkError> {
        self.check_worker(lcore)?;
        let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
        // SAFETY: called on the main lcore (Eal is !Send, created there) for an enabled
        // worker lcore; `arg` is a Box<Box<dyn FnOnce>> that the trampoline takes back
        // exactly once, and only if the launch succeeds.
        let rc = unsafe { sys::rte_eal_remote_launch(Some(launch_trampoline), arg, lcore) };
        if rc < 0 {
            // SAFETY: the launch failed, so the worker never saw `arg`; we still own it.
            drop(unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() -> i32 + Send>>()) });
            return Err(DpdkError::from_errno("rte_eal_remote_launch", rc));
        }
        Ok(())
    }

    /// Waits for worker `lcore` to finish and returns its function's return value (0 if
    /// nothing was launched on it).
    pub fn wait(&self, lcore: u32) -> Result<i32, DpdkError> {
        self.check_worker(lcore)?;
        // SAFETY: `lcore` is an enabled worker lcore (checked: the call indexes the
        // lcore table without bounds checks), called from the main lcore.
        Ok(unsafe { sys::rte_eal_wait_lcore(lcore) })
    }

    /// Waits for every worker lcore to finish (`rte_eal_mp_wait_lcore`).
    pub fn wait_all(&self) {
        // SAFETY: the EAL is initialised; called from the main lcore.
        unsafe { sys::rte_eal_mp_wait_lcore() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        self.wait_all();
        // Stop new objects first, then look for live ones (see acquire_object).
        EAL_STATE.store(STATE_DONE, Ordering::SeqCst);
        let live = LIVE_OBJECTS.load(Ordering::SeqCst);
        if live != 0 {
            EAL_STATE.store(STATE_RUNNING, Ordering::SeqCst);
            tracing::warn!(live, "DPDK objects still alive; skipping rte_eal_cleanup");
            return;
        }
        // SAFETY: no mempool or port (hence no mbuf) is alive, no new one can be created
        // (state is DONE), all workers are idle, and we are on the main lcore.
        let rc = unsafe { sys::rte_eal_cleanup() };
        if rc < 0 {
            tracing::warn!(error = %DpdkError::from_errno("rte_eal_cleanup", rc), "EAL cleanup failed");
        }
    }
}

unsafe extern "C" fn launch_trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` came from Box::into_raw in Eal::launch, which hands it to exactly one
    // successful rte_eal_remote_launch; this is its only reconstruction.
    let f = unsafe { Box::from_raw(arg.cast::<Box<dyn FnOnce() -> i32 + Send>>()) };
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(rc) => rc,
        Err(_) => {
            tracing::error!(lcore = lcore_id(), "lcore function panicked");
            -1
        }
    }
}

/// The calling thread's lcore id, or [`LCORE_ID_ANY`] for a non-EAL thread.
pub fn lcore_id() -> u32 {
    // SAFETY: rte_lcore_id reads a thread-local variable; valid on any thread.
    unsafe { sys::strait_lcore_id() }
}

/// The CPU's time-stamp counter (`rte_rdtsc`). Turn it into a `time::Instant` with
/// [`tsc_hz`].
pub fn tsc() -> u64 {
    // SAFETY: rte_rdtsc executes the rdtsc instruction; no preconditions.
    unsafe { sys::strait_rdtsc() }
}

/// TSC ticks per second as measured by the EAL (0 before the EAL is initialised).
pub fn tsc_hz() -> u64 {
    // SAFETY: rte_get_tsc_hz reads a global that is 0 until rte_eal_init measures it.
    unsafe { sys::strait_get_tsc_hz() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_eal_thread_has_lcore_id_any() {
        let id = std::thread::spawn(lcore_id).join();
        assert_eq!(id.ok(), Some(LCORE_ID_ANY));
    }

    #[test]
    fn tsc_is_monotonic_on_one_thread() {
        let a = tsc();
        let b = tsc();
        assert!(b >= a);
    }
}
