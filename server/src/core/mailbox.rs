//! A connection's mailbox: the hub puts deliveries in without waiting, and the connection
//! takes out whatever has arrived, as a batch, with one lock.
//!
//! A big room's message is put into a thousand mailboxes one after another, so putting one
//! in must cost little: a lock that nobody else holds, a push, and a wake-up only when the
//! mailbox was empty (a connection with deliveries waiting is woken already). Tokio's
//! bounded channel takes a semaphore permit per delivery and gives it back under a lock on
//! every receive, which made the channel a tenth of a server's time at its fan-out limit.
//!
//! Announcements (who joined, left, is typing, is online: [`Event::may_wait`]) do not wake
//! the connection themselves. Its mailbox joins the [`DeferredWakes`] instead, which the
//! core wakes every [`super::ANNOUNCEMENT_DELAY`]; anything else put in meanwhile wakes it
//! at once and takes them along, in order. In a storm of joins a member of a big room hears
//! dozens a second: this way they reach it in one write a tick instead of one write each,
//! which made the writes most of a storm's cost.
//!
//! The hub also ends a mailbox, when its connection cannot keep up, its user is banned or
//! the server shuts down ([`End`]): the connection's task waits for that beside its
//! deliveries ([`Ending`]), on the mailbox's one waker. Three cancellation waits did this
//! before, two of them on tokens of the connection's own: two allocations and three waits
//! in every idle connection's task.
//!
//! [`Event::may_wait`]: super::events::Event::may_wait

use std::{
    collections::VecDeque,
    future::poll_fn,
    sync::{
        atomic::{AtomicU8, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::Poll,
};

use futures_util::task::AtomicWaker;

use super::events::Delivery;
use crate::lock;

/// Why a delivery was not put in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The mailbox holds its capacity already: its connection is not keeping up.
    Full,
    /// Its connection has gone.
    Closed,
}

/// Why the hub ended a mailbox; its connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A delivery found it full: its connection is not keeping up.
    Overflowed = 1,
    /// Its connection's user was banned.
    Revoked = 2,
    /// The server is shutting down.
    ShuttingDown = 3,
}

/// `Shared::ended` before the mailbox is ended.
const NOT_ENDED: u8 = 0;

/// Makes a mailbox that holds at most `capacity` deliveries; `deferred` is where it waits
/// to be woken while it holds only deliveries that may wait (`None`: none waits).
pub fn mailbox(capacity: usize, deferred: Option<&Arc<DeferredWakes>>) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        ended: AtomicU8::new(NOT_ENDED),
        capacity,
        deferred: deferred.cloned(),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

struct Shared {
    queue: Mutex<Queue>,
    /// The receiving connection's task, woken when a delivery arrives in an empty mailbox,
    /// the last sender goes or the mailbox is ended.
    waker: AtomicWaker,
    senders: AtomicUsize,
    /// The first [`End`] the hub gave, as its number; [`NOT_ENDED`] until then.
    ended: AtomicU8,
    capacity: usize,
    deferred: Option<Arc<DeferredWakes>>,
}

/// The mailboxes holding deliveries that wait for the next tick to wake their connections.
#[derive(Default)]
pub struct DeferredWakes(Mutex<Vec<Arc<Shared>>>);

impl DeferredWakes {
    /// Wakes every connection whose deliveries have been waiting, unless it has taken them
    /// meanwhile.
    pub fn wake_all(&self) {
        let due = std::mem::take(&mut *lock(&self.0));
        for shared in due {
            shared.wake_if_deferred();
        }
    }
}

impl Shared {
    fn wake_if_deferred(&self) {
        let was_deferred = std::mem::take(&mut lock(&self.queue).wake_deferred);
        if was_deferred {
            self.waker.wake();
        }
    }
}

#[derive(Default)]
struct Queue {
    deliveries: VecDeque<Arc<Delivery>>,
    receiver_gone: bool,
    /// Deliveries ever put in: see [`Watermark`].
    pushed: u64,
    /// The mailbox holds deliveries its connection has not been woken for: they may wait,
    /// and it is in the [`DeferredWakes`].
    wake_deferred: bool,
}

/// The hub's end of a mailbox.
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Puts `delivery` in without waiting.
    pub fn try_send(&self, delivery: Arc<Delivery>) -> Result<(), Refused> {
        let may_wait = self.shared.deferred.is_some() && delivery.event.may_wait();
        let mut queue = lock(&self.shared.queue);
        if queue.receiver_gone {
            return Err(Refused::Closed);
        }
        if queue.deliveries.len() >= self.shared.capacity {
            return Err(Refused::Full);
        }
        let was_empty = queue.deliveries.is_empty();
        queue.deliveries.push_back(delivery);
        queue.pushed += 1;
        // A connection is woken once for what waits in its mailbox: when the first delivery
        // goes in, or, if everything before was deferred, by the first that may not wait.
        let (wake, defer) = if may_wait {
            queue.wake_deferred |= was_empty;
            (false, was_empty)
        } else {
            (was_empty || std::mem::take(&mut queue.wake_deferred), false)
        };
        drop(queue);
        if let Some(deferred) = self.shared.deferred.as_ref().filter(|_| defer) {
            lock(&deferred.0).push(Arc::clone(&self.shared));
        }
        if wake {
            self.shared.waker.wake();
        }
        Ok(())
    }

    /// Ends the mailbox for `why`, unless it was ended already; whether this call ended it.
    /// Deliveries are still put in: the connection decides what it does with them.
    pub fn end(&self, why: End) -> bool {
        let ended = self
            .shared
            .ended
            .compare_exchange(NOT_ENDED, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ended {
            self.shared.waker.wake();
        }
        ended
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.waker.wake();
        }
    }
}

/// The connection's end of a mailbox.
pub struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    /// Waits for deliveries and takes up to `limit` (at least one), oldest first. Empty once
    /// every sender has gone and nothing is left. Cancel-safe: nothing is taken unless it
    /// is returned.
    pub async fn recv_many(&mut self, limit: usize) -> VecDeque<Arc<Delivery>> {
        poll_fn(|cx| {
            // Registered before looking, so a delivery that arrives after the look wakes us.
            self.shared.waker.register(cx.waker());
            let taken = self.take(limit.max(1));
            if !taken.is_empty() || self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(taken);
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for the next delivery; `None` once every sender has gone and nothing is left.
    pub async fn recv(&mut self) -> Option<Arc<Delivery>> {
        poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            let next = {
                let mut queue = lock(&self.shared.queue);
                let next = queue.deliveries.pop_front();
                // What is left is taken on the next call, which does not wait to be woken.
                queue.wake_deferred = false;
                next
            };
            if next.is_some() || self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(next);
            }
            Poll::Pending
        })
        .await
    }

    /// Takes up to `limit` deliveries that have arrived, without waiting.
    pub fn try_recv_many(&mut self, limit: usize) -> VecDeque<Arc<Delivery>> {
        self.take(limit)
    }

    /// Drops every delivery waiting.
    pub fn clear(&mut self) {
        let mut queue = lock(&self.shared.queue);
        queue.deliveries.clear();
        queue.wake_deferred = false;
    }

    /// A handle that waits for the hub to end the mailbox, for the same task to wait on
    /// beside [`Self::recv_many`].
    pub fn ending(&self) -> Ending {
        Ending {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A handle that reads how many deliveries have been put in, for whoever answers the
    /// connection beside the task that receives.
    pub fn watermark(&self) -> Watermark {
        Watermark {
            shared: Arc::clone(&self.shared),
        }
    }

    fn take(&self, limit: usize) -> VecDeque<Arc<Delivery>> {
        let mut queue = lock(&self.shared.queue);
        // Whatever is taken or left, the receiver is awake and comes back for the rest.
        queue.wake_deferred = false;
        if queue.deliveries.len() <= limit {
            // The whole queue, allocation and all: an idle connection keeps no capacity.
            std::mem::take(&mut queue.deliveries)
        } else {
            queue.deliveries.drain(..limit).collect()
        }
    }
}

/// How far a mailbox has been filled. A connection whose answers are written by another
/// task than its deliveries (Socket.IO's handlers beside its pump) waits until its receiver,
/// which counts what it has taken out, has taken [`Watermark::pushed`] deliveries before
/// it answers, so the answer comes after everything delivered before it.
pub struct Watermark {
    shared: Arc<Shared>,
}

impl Watermark {
    /// How many deliveries have ever been put in. Whoever asks is about to wait for them to
    /// be taken, so deliveries waiting for the next tick wake the receiver now.
    pub fn pushed(&self) -> u64 {
        let mut queue = lock(&self.shared.queue);
        let pushed = queue.pushed;
        let deferred = std::mem::take(&mut queue.wake_deferred);
        drop(queue);
        if deferred {
            self.shared.waker.wake();
        }
        pushed
    }
}

/// Waits for the hub to end a mailbox. It shares the mailbox's one waker with the receiver,
/// so only the task that receives may wait on it.
pub struct Ending {
    shared: Arc<Shared>,
}

impl Ending {
    /// Why the mailbox was ended, once it is.
    pub async fn wait(&self) -> End {
        poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            match self.shared.ended.load(Ordering::Acquire) {
                NOT_ENDED => Poll::Pending,
                1 => Poll::Ready(End::Overflowed),
                2 => Poll::Ready(End::Revoked),
                _ => Poll::Ready(End::ShuttingDown),
            }
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut queue = lock(&self.shared.queue);
        queue.receiver_gone = true;
        queue.deliveries.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::{future::Future, pin::Pin, task::Context, time::Duration};

    use futures_util::task::ArcWake;

    use super::*;
    use crate::core::events::{Event, Topic};

    /// A delivery that wakes its connection at once.
    fn delivery(n: u32) -> Arc<Delivery> {
        Arc::new(Delivery::new(
            Topic::User(format!("u{n}")),
            Event::ReadUpTo {
                room_key: "r".into(),
                seq: n.into(),
            },
            None,
        ))
    }

    /// A delivery that may wait for the next tick.
    fn announcement(n: u32) -> Arc<Delivery> {
        Arc::new(Delivery::new(
            Topic::User(format!("u{n}")),
            Event::PresenceChanged,
            None,
        ))
    }

    fn user_of(delivery: &Delivery) -> &str {
        match &delivery.topic {
            Topic::User(user) => user,
            _ => "",
        }
    }

    /// A receiver's wait for deliveries, polled by hand with a waker that counts its wakes.
    struct Waiting<'a> {
        recv: Pin<Box<dyn Future<Output = VecDeque<Arc<Delivery>>> + 'a>>,
        wakes: Arc<Wakes>,
    }

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl ArcWake for Wakes {
        fn wake_by_ref(this: &Arc<Self>) {
            this.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl<'a> Waiting<'a> {
        /// Starts waiting: nothing is there yet.
        fn start(receiver: &'a mut Receiver) -> Self {
            let mut waiting = Self {
                recv: Box::pin(receiver.recv_many(10)),
                wakes: Arc::default(),
            };
            assert_eq!(waiting.poll(), None, "nothing to take yet");
            waiting
        }

        fn woken(&self) -> bool {
            self.wakes.0.load(Ordering::SeqCst) > 0
        }

        /// Whom the deliveries taken were for, if any were there to take.
        fn poll(&mut self) -> Option<Vec<String>> {
            let waker = futures_util::task::waker(Arc::clone(&self.wakes));
            match self.recv.as_mut().poll(&mut Context::from_waker(&waker)) {
                Poll::Ready(taken) => Some(taken.iter().map(|d| user_of(d).to_owned()).collect()),
                Poll::Pending => None,
            }
        }
    }

    #[test]
    fn ending_wakes_the_task_waiting_for_deliveries_and_keeps_the_first_reason() {
        let (sender, mut receiver) = mailbox(3, None);
        let ending = receiver.ending();
        let waiting = Waiting::start(&mut receiver);
        assert!(sender.end(End::Revoked), "the first end ends it");
        assert!(waiting.woken(), "the receiving task is woken to see it");
        assert!(!sender.end(End::Overflowed), "a second end changes nothing");
        let why = futures_util::FutureExt::now_or_never(ending.wait());
        assert_eq!(why, Some(End::Revoked));
    }

    #[test]
    fn a_mailbox_not_ended_keeps_its_ending_waiting() {
        let (_sender, receiver) = mailbox(3, None);
        let ending = receiver.ending();
        assert_eq!(futures_util::FutureExt::now_or_never(ending.wait()), None);
    }

    #[tokio::test]
    async fn holds_its_capacity_and_refuses_one_more() {
        let (sender, mut receiver) = mailbox(3, Some(&Arc::default()));
        for n in 0..3 {
            assert_eq!(sender.try_send(delivery(n)), Ok(()));
        }
        assert_eq!(sender.try_send(delivery(3)), Err(Refused::Full));
        let taken = receiver.recv_many(10).await;
        let users: Vec<&str> = taken.iter().map(|d| user_of(d)).collect();
        assert_eq!(users, ["u0", "u1", "u2"]);
        assert_eq!(
            sender.try_send(delivery(4)),
            Ok(()),
            "room again once taken"
        );
    }

    #[tokio::test]
    async fn takes_at_most_the_limit_oldest_first() {
        let (sender, mut receiver) = mailbox(10, Some(&Arc::default()));
        for n in 0..5 {
            sender.try_send(delivery(n)).unwrap();
        }
        let first: Vec<String> = receiver
            .recv_many(2)
            .await
            .iter()
            .map(|d| user_of(d).to_owned())
            .collect();
        assert_eq!(first, ["u0", "u1"]);
        let rest: Vec<String> = receiver
            .try_recv_many(10)
            .iter()
            .map(|d| user_of(d).to_owned())
            .collect();
        assert_eq!(rest, ["u2", "u3", "u4"]);
        assert!(receiver.try_recv_many(10).is_empty());
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_delivery() {
        let (sender, mut receiver) = mailbox(4, Some(&Arc::default()));
        let waiting =
            tokio::spawn(async move { receiver.recv().await.map(|d| user_of(&d).to_owned()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        sender.try_send(delivery(7)).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(got.unwrap().unwrap().as_deref(), Some("u7"));
    }

    #[test]
    fn announcements_wait_for_the_tick_and_then_come_together() {
        let deferred = Arc::default();
        let (sender, mut receiver) = mailbox(8, Some(&deferred));
        let mut waiting = Waiting::start(&mut receiver);
        sender.try_send(announcement(1)).unwrap();
        sender.try_send(announcement(2)).unwrap();
        assert!(!waiting.woken(), "woken before the tick");
        deferred.wake_all();
        assert!(waiting.woken());
        assert_eq!(waiting.poll().unwrap(), ["u1", "u2"]);
    }

    #[test]
    fn a_delivery_that_cannot_wait_takes_the_announcements_along_in_order() {
        let deferred = Arc::default();
        let (sender, mut receiver) = mailbox(8, Some(&deferred));
        let mut waiting = Waiting::start(&mut receiver);
        sender.try_send(announcement(1)).unwrap();
        assert!(!waiting.woken(), "an announcement woke the receiver");
        sender.try_send(delivery(2)).unwrap();
        assert!(waiting.woken());
        assert_eq!(waiting.poll().unwrap(), ["u1", "u2"]);
    }

    #[test]
    fn without_deferral_announcements_wake_at_once() {
        let (sender, mut receiver) = mailbox(8, None);
        let mut waiting = Waiting::start(&mut receiver);
        sender.try_send(announcement(1)).unwrap();
        assert!(waiting.woken());
        assert_eq!(waiting.poll().unwrap(), ["u1"]);
    }

    #[test]
    fn asking_for_the_watermark_wakes_waiting_announcements() {
        let (sender, mut receiver) = mailbox(8, Some(&Arc::default()));
        let watermark = receiver.watermark();
        let mut waiting = Waiting::start(&mut receiver);
        sender.try_send(announcement(1)).unwrap();
        assert!(!waiting.woken(), "an announcement woke the receiver");
        assert_eq!(watermark.pushed(), 1);
        assert!(waiting.woken());
        assert_eq!(waiting.poll().unwrap(), ["u1"]);
    }

    #[tokio::test]
    async fn ends_when_the_last_sender_goes_after_what_is_left() {
        let (sender, mut receiver) = mailbox(4, Some(&Arc::default()));
        let second = sender.clone();
        sender.try_send(delivery(1)).unwrap();
        drop(sender);
        drop(second);
        assert!(
            receiver.recv().await.is_some(),
            "what was sent is still taken"
        );
        let end = tokio::time::timeout(Duration::from_secs(5), receiver.recv()).await;
        assert!(end.unwrap().is_none());
    }

    #[test]
    fn refuses_deliveries_once_its_connection_has_gone() {
        let (sender, receiver) = mailbox(4, Some(&Arc::default()));
        drop(receiver);
        assert_eq!(sender.try_send(delivery(1)), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn the_watermark_counts_what_went_in() {
        let (sender, mut receiver) = mailbox(8, Some(&Arc::default()));
        let watermark = receiver.watermark();
        for n in 0..5 {
            sender.try_send(delivery(n)).unwrap();
        }
        assert_eq!(watermark.pushed(), 5);
        assert_eq!(receiver.recv_many(2).await.len(), 2);
        receiver.clear();
        assert_eq!(watermark.pushed(), 5, "taking out does not change it");
        sender.try_send(delivery(5)).unwrap();
        assert_eq!(watermark.pushed(), 6);
    }
}
