//! The server's per-subscriber figures from `GET /api/stats`: each
//! subscriber leg's bandwidth estimate, what the allocator gave it, what
//! was sent, and the layer of each track it receives.
//!
//! Read from `media.subscribers`, an array of objects keyed by
//! `participant`; every figure is optional, and field names are accepted
//! in camelCase or snake_case:
//!
//! | field | meaning |
//! |---|---|
//! | `participant` | the subscriber's participant id |
//! | `estimateBps` | the leg's bandwidth estimate, bit/s |
//! | `allocatedBps` | the bitrate the allocator gave the leg's tracks, bit/s |
//! | `sentBps` | the bitrate sent on the leg, bit/s |
//! | `packetsSent` | RTP packets sent on the leg so far (a counter) |
//! | `tracks` | `[{"track": "...", "layer": "...", "paused": "..."}]` |
//!
//! A server without them (older, or without bandwidth estimation) gives
//! `None`, and the report says the figures were not exposed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One subscriber's figures as the server reports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriberFigures {
    pub participant: String,
    pub estimate_bps: Option<f64>,
    pub allocated_bps: Option<f64>,
    pub sent_bps: Option<f64>,
    pub packets_sent: Option<f64>,
    /// The layer (or pause reason) of each track, as `track=layer`.
    pub layers: Vec<String>,
}

fn number(o: &Value, camel: &str, snake: &str) -> Option<f64> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The per-subscriber figures in an `/api/stats` body; `None` when the
/// body is not JSON or has no `media.subscribers` array.
pub fn subscribers(body: &str) -> Option<Vec<SubscriberFigures>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let list = v.get("media")?.get("subscribers")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|s| {
                let participant = s.get("participant")?.as_str()?.to_owned();
                let layers = s
                    .get("tracks")
                    .and_then(Value::as_array)
                    .map(|tracks| {
                        tracks
                            .iter()
                            .filter_map(|t| {
                                let track = t.get("track").and_then(text)?;
                                let state = t
                                    .get("paused")
                                    .and_then(text)
                                    .filter(|p| !p.is_empty() && p != "false")
                                    .map(|p| format!("paused:{p}"))
                                    .or_else(|| t.get("layer").and_then(text))?;
                                Some(format!("{track}={state}"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Some(SubscriberFigures {
                    participant,
                    estimate_bps: number(s, "estimateBps", "estimate_bps"),
                    allocated_bps: number(s, "allocatedBps", "allocated_bps"),
                    sent_bps: number(s, "sentBps", "sent_bps"),
                    packets_sent: number(s, "packetsSent", "packets_sent"),
                    layers,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_subscriber_figures_in_either_spelling() {
        let body = r#"{"signaling":{},"media":{"subscribers":[
            {"participant":"a","estimateBps":812000,"allocatedBps":650000,"sentBps":640000,
             "packetsSent":1234,"tracks":[{"track":"t1","layer":"q"},{"track":"t2","paused":"bandwidth"},
             {"track":"t3","layer":2,"paused":false},{"layer":"f"}]},
            {"participant":"b","estimate_bps":2.5e6,"packets_sent":"x"},
            {"estimateBps":1}
        ]}}"#;
        let s = subscribers(body).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            SubscriberFigures {
                participant: "a".into(),
                estimate_bps: Some(812000.0),
                allocated_bps: Some(650000.0),
                sent_bps: Some(640000.0),
                packets_sent: Some(1234.0),
                layers: vec!["t1=q".into(), "t2=paused:bandwidth".into(), "t3=2".into()],
            }
        );
        assert_eq!(s[1].estimate_bps, Some(2.5e6));
        assert_eq!(s[1].packets_sent, None);
    }

    #[test]
    fn absent_figures_are_none() {
        assert_eq!(subscribers(""), None);
        assert_eq!(subscribers("[]"), None);
        assert_eq!(subscribers(r#"{"media":null}"#), None);
        assert_eq!(subscribers(r#"{"media":{"tracks":3}}"#), None);
        assert_eq!(subscribers(r#"{"media":{"subscribers":{}}}"#), None);
        assert_eq!(subscribers(r#"{"media":{"subscribers":[]}}"#), Some(vec![]));
    }
}
