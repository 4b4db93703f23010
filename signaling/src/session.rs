//! One WebSocket connection: parse, police, and pass messages to the hub.

use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::ids::ClientId;
use crate::protocol::{parse_client_message, ServerMessage};
use crate::server::{Command, SessionOut, Signaling};
use crate::ErrorCode;

/// WebSocket close code for a frame over the size limit (RFC 6455).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code for a policy violation: the message-rate limit, a
/// client too slow reading its messages.
pub const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code for a client that went silent (idle timeout).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code for a text frame that is not UTF-8.
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// WebSocket close code for any other protocol violation.
pub const CLOSE_PROTOCOL: u16 = 1002;

/// A token bucket: `burst` messages at once, refilled at `rate` per second.
struct RateLimit {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl RateLimit {
    fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimit {
            tokens: burst,
            burst,
            rate: f64::from(rate),
            last: Instant::now(),
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(crate) async fn run(socket: WebSocket, sig: Signaling, token: Option<String>) {
    let conn = ClientId::random();
    let span = tracing::info_span!("conn", %conn);
    serve(socket, sig, token, conn).instrument(span).await;
}

/// Why a read failed, as the close code owed to the client (RFC 6455
/// section 7.4.1): 1009 for a message over the size limit, 1007 for text
/// that is not UTF-8, 1002 for any other protocol violation (unmasked
/// frames, reserved opcodes or bits, bad fragmentation). `None`: the
/// connection itself failed; there is no one to tell.
fn close_for(e: &axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
    let inner = e.source_ws()?;
    match inner {
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Some((CLOSE_TOO_BIG, "message too big"))
        }
        WsError::Capacity(_) => Some((CLOSE_TOO_BIG, "message too big")),
        // The TCP connection ended without a close frame: lost, not a
        // violation (the participant is held for the reconnect grace).
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Utf8(_) => Some((CLOSE_INVALID_DATA, "text frame is not valid UTF-8")),
        WsError::Protocol(_) => Some((CLOSE_PROTOCOL, "WebSocket protocol violation")),
        _ => None,
    }
}

/// Reaches the WebSocket library's error inside axum's.
trait SourceWs {
    fn source_ws(&self) -> Option<&tungstenite::Error>;
}

impl SourceWs for axum::Error {
    fn source_ws(&self) -> Option<&tungstenite::Error> {
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(cur) = e {
            if let Some(ws) = cur.downcast_ref::<tungstenite::Error>() {
                return Some(ws);
            }
            e = cur.source();
        }
        None
    }
}

/// Counts a live session; the count drops when the session's task (its
/// socket and its queued frames) is gone.
struct Live(Signaling);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.session_ended();
    }
}

async fn serve(socket: WebSocket, sig: Signaling, token: Option<String>, conn: ClientId) {
    tracing::debug!("connected");
    let _live = Live(sig.session_started());
    let (out_tx, mut out_rx) = mpsc::channel(crate::server::OUTBOX);
    sig.send(Command::Connect {
        conn: conn.clone(),
        token,
        out: out_tx,
    });
    let (mut sink, mut stream) = socket.split();
    let limits = sig.limits().clone();
    let mut rate = RateLimit::new(limits.messages_per_second, limits.message_burst);
    let write_timeout = limits.write_timeout;
    let idle = limits.idle_timeout;
    let ping_every = (idle / 3).max(std::time::Duration::from_millis(10));
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at((Instant::now() + ping_every).into(), ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    // Whether the participant may be held for reconnection: only when the
    // connection was lost, not when the client said goodbye (close 1000 or
    // 1001) or the server threw it out.
    let mut hold = true;
    let close = loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(SessionOut::Frame(text)) => {
                    // A client that does not read fills its TCP window and
                    // this write waits: past the deadline it is a slow
                    // reader, and it goes rather than hold its queue.
                    match tokio::time::timeout(write_timeout, sink.send(Message::Text(text.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break None,
                        Err(_) => break Some((CLOSE_POLICY, "too slow reading messages")),
                    }
                }
                Some(SessionOut::Close) => break Some((1000, "replaced by a resumed connection")),
                None => break Some((CLOSE_POLICY, "too slow reading messages")),
            },
            _ = ping.tick() => {
                if heard.elapsed() >= idle {
                    // Not even a pong: the client or its network is gone.
                    // Its place is held for the reconnect grace.
                    break Some((CLOSE_GOING_AWAY, "idle timeout"));
                }
                match tokio::time::timeout(write_timeout, sink.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => break Some((CLOSE_POLICY, "too slow reading messages")),
                }
            }
            frame = stream.next() => {
                let now = Instant::now();
                heard = now;
                let text = match frame {
                    None => break None,
                    Some(Err(e)) => match close_for(&e) {
                        Some(c) => break Some(c),
                        None => break None,
                    },
                    Some(Ok(Message::Close(frame))) => {
                        hold = !matches!(frame.as_ref().map(|f| f.code), Some(1000 | 1001));
                        break None;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(msg)) => {
                        // Every data frame counts against the rate, whatever it holds.
                        if !rate.allow(now) {
                            break Some((CLOSE_POLICY, "message rate limit exceeded"));
                        }
                        match msg {
                            Message::Text(t) => t,
                            _ => {
                                let e = ServerMessage::error(ErrorCode::InvalidMessage, "binary frames are not supported; send JSON text", None);
                                let json = serde_json::to_string(&e).unwrap_or_default();
                                match tokio::time::timeout(write_timeout, sink.send(Message::Text(json.into()))).await {
                                    Ok(Ok(())) => continue,
                                    Ok(Err(_)) => break None,
                                    Err(_) => break Some((CLOSE_POLICY, "too slow reading messages")),
                                }
                            }
                        }
                    }
                };
                if text.len() > limits.max_message_bytes {
                    break Some((CLOSE_TOO_BIG, "message too big"));
                }
                match parse_client_message(text.as_str()) {
                    Ok(incoming) => sig.send(Command::Message { conn: conn.clone(), incoming }),
                    Err(e) => {
                        let msg = ServerMessage::Error { code: e.code, message: e.message, request: e.request };
                        let json = serde_json::to_string(&msg).unwrap_or_default();
                        match tokio::time::timeout(write_timeout, sink.send(Message::Text(json.into()))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break None,
                            Err(_) => break Some((CLOSE_POLICY, "too slow reading messages")),
                        }
                    }
                }
            }
        }
    };
    // Thrown out: the place is not held, except after an idle timeout (the
    // network may be what failed).
    if let Some((code, _)) = close {
        hold = code == CLOSE_GOING_AWAY;
    }
    // Nothing more is read from the queue: free it now, before the close.
    drop(out_rx);
    if let Some((code, reason)) = close {
        tracing::debug!(%conn, code, reason, "closing socket");
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        // A slow reader may not take even this: bounded, then the socket
        // is dropped.
        let _ = tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
    }
    sig.send(Command::Disconnect { conn, hold });
}
