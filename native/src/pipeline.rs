//! The debug=2 scanner's stack parser, on a second thread once a dump has many stacks.
//!
//! The scanner parses each distinct stack's text when it first meets it (`stacks::Builder`).
//! On a dump whose stacks are all distinct that parse was some 45% of the scan, on the one
//! thread that also splits lines and hashes keys. Nothing the scanner decides depends on it:
//! the builder's result is read only when the scan finishes. So from `THREAD_AT` stacks on,
//! the texts go in batches, in order, to a thread that owns the builder, and `finish` joins
//! it. The builder sees the same texts in the same order either way, so the result is the
//! same (tests/test_scan_equivalence.py holds the scanner to the Python reference on dumps
//! below and above `THREAD_AT` stacks). The channel holds at most `IN_FLIGHT` batches:
//! a streamed scan of a million goroutines keeps about a megabyte of texts queued.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::OnceLock;
use std::thread::JoinHandle;

use crate::stacks::{Builder, Parsed};

/// Stacks parsed on the scanner's own thread before a thread is worth starting.
pub const THREAD_AT: usize = 1024;
const BATCH_BYTES: usize = 256 << 10;
const IN_FLIGHT: usize = 4;

/// Texts one after the other; `ends[i]` is where text i ends.
#[derive(Default)]
struct Batch {
    text: Vec<u8>,
    ends: Vec<usize>,
}

enum Mode {
    /// Boxed: the builder is big next to the worker's handles.
    Inline(Box<Builder>),
    Worker {
        tx: SyncSender<Batch>,
        handle: JoinHandle<Builder>,
        batch: Batch,
    },
}

pub struct StackParser {
    mode: Mode,
    added: usize,
}

impl Default for StackParser {
    fn default() -> Self {
        StackParser {
            mode: Mode::Inline(Box::default()),
            added: 0,
        }
    }
}

/// Whether this process may use a second core. Asked once: `available_parallelism` reads the
/// cgroup's CPU quota from files, which a daemon's scanner per scrape must not pay for.
fn several_cores() -> bool {
    static SEVERAL: OnceLock<bool> = OnceLock::new();
    *SEVERAL.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

impl StackParser {
    /// Parses the next text (text i is the i-th call), now or on the parser's thread.
    pub fn add(&mut self, text: &[u8]) {
        self.added += 1;
        match &mut self.mode {
            Mode::Inline(b) => {
                b.add(text);
                // Tried once, at `THREAD_AT`: when no thread starts, the rest is parsed here.
                if self.added == THREAD_AT && several_cores() {
                    self.start();
                }
            }
            Mode::Worker { tx, batch, .. } => {
                batch.text.extend_from_slice(text);
                batch.ends.push(batch.text.len());
                if batch.text.len() >= BATCH_BYTES {
                    let full = std::mem::take(batch);
                    // An error means the thread is gone (it panicked): finish() raises that.
                    let _ = tx.send(full);
                }
            }
        }
    }

    /// Hands the builder to a thread; keeps it here if no thread can be started.
    fn start(&mut self) {
        let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
        // The builder goes over once the thread runs: a failed spawn drops only the channel.
        let (give, take) = sync_channel::<Builder>(1);
        let spawned = std::thread::Builder::new()
            .name("grprof-stacks".into())
            .spawn(move || {
                let mut b = take.recv().expect("start() sends the builder once spawned");
                for batch in rx {
                    let mut at = 0;
                    for &end in &batch.ends {
                        b.add(&batch.text[at..end]);
                        at = end;
                    }
                }
                b
            });
        let Ok(handle) = spawned else {
            return;
        };
        let Mode::Inline(b) = std::mem::replace(
            &mut self.mode,
            Mode::Worker {
                tx,
                handle,
                batch: Batch::default(),
            },
        ) else {
            unreachable!("start() runs in Inline mode only")
        };
        give.send(*b)
            .expect("the parser's thread waits for its builder");
    }

    /// The parsed stacks, once every text is parsed.
    pub fn finish(self) -> Parsed {
        match self.mode {
            Mode::Inline(b) => b.finish(),
            Mode::Worker { tx, handle, batch } => {
                if !batch.ends.is_empty() {
                    let _ = tx.send(batch);
                }
                drop(tx);
                match handle.join() {
                    Ok(b) => b.finish(),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        }
    }
}
