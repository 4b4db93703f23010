//! This node's pub/sub connection to Redis, which comes back after Redis
//! does.
//!
//! The feed remembers every channel it listens to. When the connection
//! ends (Redis restarted, or the network dropped it), [`Feed::next`]
//! reports [`FeedEvent::Lost`] once, then [`FeedEvent::Retry`] each time
//! an attempt to connect again is due: 100 ms after the loss, the delay
//! doubling up to 2 s ([`Backoff`]). [`Feed::reconnect`] connects and
//! subscribes to every remembered channel at once, so no channel is
//! forgotten however many rooms came and went meanwhile.
//!
//! While the feed is down, subscribing fails at once: a join that needs a
//! new room's events is refused rather than left waiting for Redis.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::time::Instant;

use super::store::ClusterError;

/// How long connecting and subscribing again may take before the attempt
/// counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one `SUBSCRIBE` may wait for Redis.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Delays between attempts to reach Redis again: from 100 ms, doubling, at
/// most 2 s. Short at first because a restarted Redis is usually back in
/// well under a second; bounded so a long outage costs one attempt (and one
/// log line) every 2 s.
#[derive(Debug)]
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub(super) fn new() -> Self {
        Backoff { next: Self::FIRST }
    }

    /// The delay before the next attempt; the one after is twice as long.
    pub(super) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    /// Starts again from the shortest delay (after a success).
    pub(super) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// What [`Feed::next`] has.
pub(super) enum FeedEvent {
    Message(redis::Msg),
    /// The connection just ended; nothing arrives until it is back.
    Lost,
    /// Time to try [`Feed::reconnect`].
    Retry,
}

type Link = (PubSubSink, PubSubStream);

pub(super) struct Feed {
    client: redis::Client,
    /// `None` while Redis cannot be reached.
    link: Option<Link>,
    /// Every channel subscribed to, to subscribe again after a reconnect.
    channels: BTreeSet<String>,
    backoff: Backoff,
    retry_at: Instant,
    /// Failed attempts since the connection was lost.
    attempts: u32,
}

impl Feed {
    /// Connects, listening to `channel` (this node's own).
    pub(super) async fn connect(
        client: redis::Client,
        channel: String,
    ) -> Result<Feed, ClusterError> {
        let mut feed = Feed {
            client,
            link: None,
            channels: BTreeSet::from([channel]),
            backoff: Backoff::new(),
            retry_at: Instant::now(),
            attempts: 0,
        };
        feed.link = Some(feed.open().await?);
        Ok(feed)
    }

    /// A new connection, subscribed to every channel.
    async fn open(&self) -> Result<Link, ClusterError> {
        let attempt = async {
            let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
            let all: Vec<&String> = self.channels.iter().collect();
            sink.subscribe(all).await?;
            Ok::<_, ClusterError>((sink, stream))
        };
        tokio::time::timeout(ATTEMPT_TIMEOUT, attempt)
            .await
            .map_err(|_| ClusterError::Timeout)?
    }

    /// Listens to `channel`, now and after every reconnect.
    pub(super) async fn subscribe(&mut self, channel: String) -> Result<(), ClusterError> {
        let Some((sink, _)) = self.link.as_mut() else {
            return Err(ClusterError::Down);
        };
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.subscribe(&channel))
            .await
            .map_err(|_| ClusterError::Timeout)??;
        self.channels.insert(channel);
        Ok(())
    }

    /// Stops listening to `channel`. Forgotten even when Redis cannot be
    /// told: the next connection will not subscribe to it.
    pub(super) async fn unsubscribe(&mut self, channel: &str) {
        self.channels.remove(channel);
        if let Some((sink, _)) = self.link.as_mut() {
            let _ = tokio::time::timeout(SUBSCRIBE_TIMEOUT, sink.unsubscribe(channel)).await;
        }
    }

    /// The next message; or that the connection was lost; or, while it is
    /// down, that the next attempt to connect is due.
    pub(super) async fn next(&mut self) -> FeedEvent {
        match self.link.as_mut() {
            Some((_, stream)) => match stream.next().await {
                Some(m) => FeedEvent::Message(m),
                None => {
                    self.link = None;
                    self.backoff.reset();
                    self.attempts = 0;
                    self.retry_at = Instant::now() + self.backoff.next_delay();
                    tracing::warn!(
                        "cluster: the Redis pub/sub connection closed; connecting again"
                    );
                    FeedEvent::Lost
                }
            },
            None => {
                tokio::time::sleep_until(self.retry_at).await;
                FeedEvent::Retry
            }
        }
    }

    /// Connects again and subscribes to every channel. On failure the next
    /// attempt is scheduled (one log line per attempt, so at most one per
    /// backoff delay).
    pub(super) async fn reconnect(&mut self) -> Result<(), ClusterError> {
        match self.open().await {
            Ok(link) => {
                self.link = Some(link);
                tracing::info!(
                    failed_attempts = self.attempts,
                    channels = self.channels.len(),
                    "cluster: connected to Redis again; subscribed again"
                );
                self.attempts = 0;
                self.backoff.reset();
                Ok(())
            }
            Err(e) => {
                self.attempts += 1;
                let delay = self.backoff.next_delay();
                self.retry_at = Instant::now() + delay;
                tracing::warn!(
                    attempt = self.attempts,
                    next_in_ms = delay.as_millis() as u64,
                    "cluster: cannot reach Redis: {e}"
                );
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_100_ms_up_to_2_s_and_start_over_after_a_reset() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
