//! [`LogCapture`]: what this thread logs at INFO and above, for tests that
//! assert on log lines.
//!
//! `tracing` caches, per callsite and process-wide, whether any subscriber
//! listens. While one subscriber is registered, the cache of a callsite is
//! computed from the default subscriber of whichever thread reaches it first
//! (tokio-rs/tracing#3611): a sibling test's thread, with none, caches "no
//! one listens", and this thread's lines at that callsite are dropped before
//! they are made. A test therefore reaches the callsites it watches once,
//! then calls [`LogCapture::rebuild`], which recomputes every cache from this
//! thread and clears what was captured so far.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// A thread-local INFO subscriber writing into a buffer; removed on drop.
#[derive(Debug)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: DefaultGuard,
}

#[derive(Clone, Debug)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Installs the subscriber as this thread's default.
    pub fn install() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Buffer(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buffer,
            _guard: guard,
        }
    }

    /// Recomputes every registered callsite's cache from this thread (so the
    /// ones reached since [`LogCapture::install`] reach this subscriber) and
    /// forgets what was captured so far.
    pub fn rebuild(&self) {
        tracing::callsite::rebuild_interest_cache();
        self.buffer.lock().expect("log buffer").clear();
    }

    /// What was captured since the last [`LogCapture::rebuild`].
    pub fn text(&self) -> String {
        String::from_utf8(self.buffer.lock().expect("log buffer").clone()).expect("utf-8 logs")
    }
}

#[cfg(test)]
mod tests {
    use super::LogCapture;

    fn probe() {
        tracing::info!("log capture probe");
    }

    /// The case of tokio-rs/tracing#3611: a thread with no subscriber
    /// reaches the callsite first, while this thread's is the only one.
    #[test]
    fn a_line_a_thread_without_a_subscriber_reached_first_is_captured_after_rebuild() {
        let logs = LogCapture::install();
        std::thread::spawn(probe)
            .join()
            .expect("the sibling thread");
        probe();
        logs.rebuild();
        assert_eq!(logs.text(), "", "rebuild forgets what was captured");
        probe();
        assert!(
            logs.text().contains("log capture probe"),
            "the line is captured: {:?}",
            logs.text()
        );
    }
}
