//! Cancelling a generation from another thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag that cancels a generation; clones share it, so one can be handed to another thread
/// (a UI's stop button, a server's disconnect handler) while the generator checks it between
/// tokens.
///
/// ```
/// use ziglama_infer::stream::Cancellation;
///
/// let cancel = Cancellation::new();
/// let remote = cancel.clone();
/// std::thread::spawn(move || remote.cancel()).join().unwrap();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cancellation {
    flag: Arc<AtomicBool>,
}

impl Cancellation {
    /// A flag not yet raised.
    pub fn new() -> Cancellation {
        Cancellation::default()
    }

    /// Raises the flag; every clone sees it. Cancelling twice is harmless.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
    }

    /// Whether the flag has been raised.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}
