//! Seeded random traffic into the hub: mutated and garbage messages from many
//! connections that come and go. Nothing panics, every request that fails is
//! answered with an error, and the room bookkeeping stays consistent.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use signaling::auth::Auth;
use signaling::config::{IceConfig, RoomsConfig};
use signaling::hub::{Hub, Input};
use signaling::protocol::{parse_client_message, Outgoing, ServerMessage};
use signaling::ClientId;

const TEMPLATES: &[&str] = &[
    r#"{"type":"join","room":"r1","name":"n"}"#,
    r#"{"type":"join","room":"r2","mode":"p2p"}"#,
    r#"{"type":"join","room":"r3","mode":"sfu","resume":"abc"}"#,
    r#"{"type":"leave"}"#,
    r#"{"type":"offer","target":"T","sdp":"v=0"}"#,
    r#"{"type":"offer","sdp":"v=0"}"#,
    r#"{"type":"answer","target":"T","sdp":"v=0"}"#,
    r#"{"type":"ice-candidate","target":"T","candidate":{"candidate":"c"}}"#,
    r#"{"type":"ice-candidate","candidate":null}"#,
    r#"{"type":"media-state","microphone":true,"camera":false,"tracks":[{"id":"x","source":"screen"}]}"#,
    r#"{"type":"list-clients"}"#,
    r#"{"type":"ping","id":[1,2]}"#,
];

fn mutate(rng: &mut StdRng, s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    for _ in 0..rng.random_range(0..4) {
        if b.is_empty() {
            break;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..3) {
            0 => b[i] = rng.random(),
            1 => {
                b.remove(i);
            }
            _ => b.insert(i, rng.random()),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn random_traffic_never_breaks_the_hub() {
    for seed in 0..20u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let rooms = RoomsConfig {
            max_p2p_participants: 3,
            ..RoomsConfig::default()
        };
        let mut hub = Hub::new(
            Auth::new(Default::default()),
            rooms,
            IceConfig::default(),
            seed % 2 == 0,
        );
        let mut conns: Vec<ClientId> = Vec::new();
        let mut now = 0u64;
        for _ in 0..2000 {
            now += rng.random_range(0..50);
            let roll = rng.random_range(0..100);
            if conns.is_empty() || roll < 5 {
                let c = ClientId::random();
                hub.handle(
                    Input::Connected {
                        conn: c.clone(),
                        token: None,
                    },
                    now,
                );
                conns.push(c);
                continue;
            }
            if roll < 8 {
                let c = conns.swap_remove(rng.random_range(0..conns.len()));
                hub.handle(
                    Input::Disconnected {
                        conn: c,
                        hold: rng.random(),
                    },
                    now,
                );
                continue;
            }
            if roll < 10 {
                hub.handle(Input::Timeout, now + 20_000);
                continue;
            }
            let from = conns[rng.random_range(0..conns.len())].clone();
            let target = conns[rng.random_range(0..conns.len())].to_string();
            let text = TEMPLATES[rng.random_range(0..TEMPLATES.len())].replace('T', &target);
            let text = if rng.random_bool(0.5) {
                mutate(&mut rng, &text)
            } else {
                text
            };
            match parse_client_message(&text) {
                Ok(incoming) => {
                    let fx = hub.handle(
                        Input::Message {
                            conn: from.clone(),
                            incoming,
                        },
                        now,
                    );
                    for (_, out) in &fx.sends {
                        // Every frame serialises to JSON with a type.
                        let v: serde_json::Value = serde_json::from_str(&out.to_json()).unwrap();
                        assert!(v["type"].is_string(), "{v}");
                        if let Outgoing::Message(ServerMessage::Error { message, .. }) = out {
                            assert!(!message.is_empty());
                        }
                    }
                }
                Err(e) => assert!(!e.message.is_empty()),
            }
            let st = hub.stats();
            assert!(
                st.rooms <= st.participants,
                "a room without members: {st:?}"
            );
            assert_eq!(st.rooms, st.p2p_rooms + st.sfu_rooms);
        }
        for c in conns.drain(..) {
            hub.handle(
                Input::Disconnected {
                    conn: c,
                    hold: false,
                },
                now,
            );
        }
        hub.handle(Input::Timeout, now + 60_000);
        let st = hub.stats();
        assert_eq!(
            (st.connections, st.participants, st.rooms),
            (0, 0, 0),
            "seed {seed}: {st:?}"
        );
    }
}
