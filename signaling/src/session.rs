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
/// WebSocket close code for a policy violation: the message-rate limit.
pub const CLOSE_POLICY: u16 = 1008;

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

async fn serve(socket: WebSocket, sig: Signaling, token: Option<String>, conn: ClientId) {
    tracing::debug!("connected");
    let (out_tx, mut out_rx) = mpsc::channel(crate::server::OUTBOX);
    sig.send(Command::Connect {
        conn: conn.clone(),
        token,
        out: out_tx,
    });
    let (mut sink, mut stream) = socket.split();
    let limits = sig.limits().clone();
    let mut rate = RateLimit::new(limits.messages_per_second, limits.message_burst);

    // Whether the participant may be held for reconnection: only when the
    // connection was lost, not when the client said goodbye (close 1000 or
    // 1001) or the server threw it out.
    let mut hold = true;
    let close = loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(SessionOut::Frame(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                Some(SessionOut::Close) => break Some((1000, "replaced by a resumed connection")),
                None => break Some((CLOSE_POLICY, "too slow reading messages")),
            },
            frame = stream.next() => {
                let text = match frame {
                    None | Some(Err(_)) => break None,
                    Some(Ok(Message::Close(frame))) => {
                        hold = !matches!(frame.as_ref().map(|f| f.code), Some(1000 | 1001));
                        break None;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(b))) => {
                        if b.len() > limits.max_message_bytes {
                            break Some((CLOSE_TOO_BIG, "message too big"));
                        }
                        let e = ServerMessage::error(ErrorCode::InvalidMessage, "binary frames are not supported; send JSON text", None);
                        let _ = sink.send(Message::Text(serde_json::to_string(&e).unwrap_or_default().into())).await;
                        continue;
                    }
                };
                if text.len() > limits.max_message_bytes {
                    break Some((CLOSE_TOO_BIG, "message too big"));
                }
                if !rate.allow(Instant::now()) {
                    break Some((CLOSE_POLICY, "message rate limit exceeded"));
                }
                match parse_client_message(text.as_str()) {
                    Ok(incoming) => sig.send(Command::Message { conn: conn.clone(), incoming }),
                    Err(e) => {
                        let msg = ServerMessage::Error { code: e.code, message: e.message, request: e.request };
                        let json = serde_json::to_string(&msg).unwrap_or_default();
                        if sink.send(Message::Text(json.into())).await.is_err() {
                            break None;
                        }
                    }
                }
            }
        }
    };
    if close.is_some() {
        hold = false;
    }
    if let Some((code, reason)) = close {
        tracing::debug!(%conn, code, reason, "closing socket");
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }
    sig.send(Command::Disconnect { conn, hold });
}
