//! Stopping an export or a review from outside the run, cleanly.
//!
//! A [`Cancel`] is a flag shared between the run and whoever may stop it (a Python caller whose
//! progress callback raised, a signal handler, a user interface's stop button). The run looks at
//! it between files and between patients, never in the middle of writing one, and then stops as
//! a kill would but tidier: bundles already finished (each announced by a `bundle_written` event)
//! stay whole, the bundle being written and its sealed identity record are removed (they only
//! ever existed under temporary names), and no report is written. A review stops the same way:
//! files already under their final name stay, the pending ones are removed.

use super::ExportError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A request to stop a run, shared by cloning. Cheap to check: runs look at it once per file.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the run to stop at its next check. Safe from any thread, any number of times.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(ExportError::Cancelled)` once cancelled.
    pub(crate) fn check(&self) -> Result<(), ExportError> {
        if self.is_cancelled() {
            Err(ExportError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let cancel = Cancel::new();
        let handle = cancel.clone();
        assert!(cancel.check().is_ok());
        handle.cancel();
        assert!(cancel.is_cancelled());
        assert!(matches!(cancel.check(), Err(ExportError::Cancelled)));
    }
}
