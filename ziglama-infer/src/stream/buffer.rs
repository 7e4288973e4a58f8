//! A bounded buffer between a generating thread and a consuming one.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{StopReason, StreamStatus};

/// A bounded, thread-safe queue carrying a generation (tokens or text chunks) from a
/// producer to a consumer, with backpressure and a shared [`StreamStatus`].
///
/// - [`push`](Self::push) blocks while the buffer is full, so a producer never runs more
///   than `capacity` items ahead of a slow consumer;
/// - [`pop`](Self::pop) blocks while it is empty and returns `None` once the buffer is
///   closed and drained;
/// - [`close`](Self::close) may come from either side: the producer when it is done (items
///   already pushed are still delivered), the consumer when it wants no more (the next
///   `push` fails at once, even if the producer is blocked in it).
///
/// Most code uses the two ends [`TokenBuffer::bounded`] returns, which close the buffer
/// when dropped so that neither side can wait forever for the other.
///
/// ```
/// use ziglama_infer::stream::{StopReason, StreamStatus, TokenBuffer};
///
/// let (producer, consumer) = TokenBuffer::bounded(2);
/// let worker = std::thread::spawn(move || {
///     for word in ["streams", "are", "ordered"] {
///         producer.push(word.to_string()).expect("the consumer stays");
///     }
///     producer.finish(StopReason::MaxTokens);
/// });
/// let words: Vec<String> = consumer.iter().collect();
/// worker.join().unwrap();
/// assert_eq!(words, ["streams", "are", "ordered"]);
/// assert_eq!(consumer.status(), StreamStatus::Finished(StopReason::MaxTokens));
/// ```
pub struct TokenBuffer<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item is pushed or the buffer closes.
    not_empty: Condvar,
    /// Signalled when an item is popped or the buffer closes.
    not_full: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    status: StreamStatus,
}

/// The item a [`TokenBuffer::push`] could not deliver because the buffer is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed<T>(pub T);

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stream's buffer is closed")
    }
}

impl<T: fmt::Debug> std::error::Error for Closed<T> {}

impl<T> TokenBuffer<T> {
    /// A buffer holding at most `capacity` items (a capacity of 0 is taken as 1).
    pub fn new(capacity: usize) -> TokenBuffer<T> {
        let capacity = capacity.max(1);
        TokenBuffer {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                closed: false,
                status: StreamStatus::Running,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity,
        }
    }

    /// A buffer of `capacity` items (0 is taken as 1) and its two ends.
    pub fn bounded(capacity: usize) -> (Producer<T>, Consumer<T>) {
        let buffer = Arc::new(TokenBuffer::new(capacity));
        (Producer(Arc::clone(&buffer)), Consumer(buffer))
    }

    /// The most items the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The items waiting to be popped.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `item`, waiting while the buffer is full.
    ///
    /// # Errors
    ///
    /// [`Closed`] with the item when the buffer is closed (before or while waiting).
    pub fn push(&self, item: T) -> Result<(), Closed<T>> {
        let mut state = self.lock();
        while !state.closed && state.items.len() >= self.capacity {
            state = self
                .not_full
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            return Err(Closed(item));
        }
        state.items.push_back(item);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, waiting while the buffer is empty and open; `None` once it is
    /// closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                drop(state);
                self.not_full.notify_one();
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state = self
                .not_empty
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Takes the oldest item if one is waiting, without blocking.
    pub fn try_pop(&self) -> Option<T> {
        let item = self.lock().items.pop_front();
        if item.is_some() {
            self.not_full.notify_one();
        }
        item
    }

    /// Closes the buffer: pushes fail from now on, pops drain what is left. Wakes every
    /// waiting thread. Closing twice is harmless.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Records how the stream ended (only the first end counts) and closes the buffer.
    pub fn finish(&self, status: StreamStatus) {
        {
            let mut state = self.lock();
            if state.status.is_running() {
                state.status = status;
            }
            state.closed = true;
        }
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Whether the buffer is closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How the stream stands.
    pub fn status(&self) -> StreamStatus {
        self.lock().status.clone()
    }

    /// The state, even if a thread panicked while holding the lock (every update leaves it
    /// consistent).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> fmt::Debug for TokenBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("TokenBuffer")
            .field("capacity", &self.capacity)
            .field("len", &state.items.len())
            .field("closed", &state.closed)
            .field("status", &state.status)
            .finish()
    }
}

/// The producing end of a [`TokenBuffer`]. Dropping it before [`finish`](Self::finish)
/// ends the stream as [`StreamStatus::Failed`].
#[derive(Debug)]
pub struct Producer<T>(Arc<TokenBuffer<T>>);

impl<T> Producer<T> {
    /// Delivers `item`, waiting while the buffer is full (backpressure).
    ///
    /// # Errors
    ///
    /// [`Closed`] with the item when the consumer has closed the stream: stop generating.
    pub fn push(&self, item: T) -> Result<(), Closed<T>> {
        self.0.push(item)
    }

    /// Ends the stream with this reason; the consumer still receives the items pushed.
    pub fn finish(self, reason: StopReason) {
        self.0.finish(StreamStatus::Finished(reason));
    }

    /// Ends the stream as failed, with a message saying why.
    pub fn fail(self, message: impl Into<String>) {
        self.0.finish(StreamStatus::Failed(message.into()));
    }

    /// Whether the consumer has closed the stream (or it has ended).
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// How the stream stands.
    pub fn status(&self) -> StreamStatus {
        self.0.status()
    }

    /// The shared buffer.
    pub fn buffer(&self) -> &TokenBuffer<T> {
        &self.0
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.0.finish(StreamStatus::Failed(
            "the producer stopped without finishing the stream".to_string(),
        ));
    }
}

/// The consuming end of a [`TokenBuffer`]; an iterator over the items. Dropping it closes
/// the stream, which a blocked producer notices at once.
///
/// ```
/// use ziglama_infer::stream::{StopReason, TokenBuffer};
///
/// let (producer, consumer) = TokenBuffer::<u32>::bounded(1);
/// producer.push(7).unwrap();
/// consumer.close(); // the consumer wants no more
/// assert!(producer.push(8).is_err());
/// assert!(consumer.status().is_cancelled());
/// assert_eq!(consumer.pop(), Some(7)); // what was delivered stays readable
/// assert_eq!(consumer.pop(), None);
/// ```
#[derive(Debug)]
pub struct Consumer<T>(Arc<TokenBuffer<T>>);

impl<T> Consumer<T> {
    /// Takes the next item, waiting for it; `None` once the stream has ended and every item
    /// has been taken.
    pub fn pop(&self) -> Option<T> {
        self.0.pop()
    }

    /// Takes the next item if one is waiting, without blocking.
    pub fn try_pop(&self) -> Option<T> {
        self.0.try_pop()
    }

    /// Closes the stream from the consumer's side: the producer's next push fails, and a
    /// stream still running ends as `Finished(StopReason::Cancelled)`.
    pub fn close(&self) {
        self.0.finish(StreamStatus::Finished(StopReason::Cancelled));
    }

    /// How the stream stands.
    pub fn status(&self) -> StreamStatus {
        self.0.status()
    }

    /// A blocking iterator over the items.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter(&self.0)
    }

    /// The shared buffer.
    pub fn buffer(&self) -> &TokenBuffer<T> {
        &self.0
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> Iterator for Consumer<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.0.pop()
    }
}

/// A blocking iterator over the items of a [`TokenBuffer`], ending when the stream has
/// ended and been drained.
#[derive(Debug)]
pub struct Iter<'a, T>(&'a TokenBuffer<T>);

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.0.pop()
    }
}

impl<'a, T> IntoIterator for &'a TokenBuffer<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        Iter(self)
    }
}

impl<'a, T> IntoIterator for &'a Consumer<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        Iter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_zero_is_one_and_try_pop_does_not_block() {
        let buffer = TokenBuffer::new(0);
        assert_eq!(buffer.capacity(), 1);
        assert_eq!(buffer.try_pop(), None);
        buffer.push('a').unwrap();
        assert_eq!((buffer.len(), buffer.is_empty()), (1, false));
        assert_eq!(buffer.try_pop(), Some('a'));
        assert!(buffer.is_empty() && !buffer.is_closed());
    }

    #[test]
    fn the_first_end_counts() {
        let (producer, consumer) = TokenBuffer::<u8>::bounded(4);
        producer.push(1).unwrap();
        producer.finish(StopReason::MaxTokens);
        consumer.close();
        assert_eq!(
            consumer.status(),
            StreamStatus::Finished(StopReason::MaxTokens)
        );
        assert_eq!(consumer.pop(), Some(1));
        assert_eq!(consumer.pop(), None);
        assert_eq!(Closed(3u8).to_string(), "the stream's buffer is closed");
    }
}
