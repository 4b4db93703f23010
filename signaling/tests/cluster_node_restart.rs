//! A node killed and started again under the same id before its registry
//! entry expires: the members of its previous run leave their rooms.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{cluster_node, Client, TestServer};
use signaling::cluster::Store;
use signaling::config::SignalingConfig;

/// Long enough for any step here on a loaded machine; reaching it means
/// the step never happens.
const BOUND: Duration = Duration::from_secs(30);

/// A node on a runtime of its own, so the test can kill it: shutting the
/// runtime down drops every task and socket of the node at once, with no
/// chance to leave the cluster, as SIGKILL does to a process.
fn killable_node(redis_url: String, id: &'static str) -> (TestServer, tokio::runtime::Runtime) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let node = rt.block_on(cluster_node(&redis_url, id, SignalingConfig::default()));
        (node, rt)
    })
    .join()
    .unwrap()
}

/// Room `r` as Redis lists it: its members' names, sorted.
async fn listed(store: &Store) -> Vec<String> {
    let room = signaling::ids::RoomName::parse("r").unwrap();
    let Ok((_, members)) = store.room_members(&room).await else {
        return Vec::new();
    };
    let mut names: Vec<String> = members.into_iter().map(|(m, _)| m.info.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_node_back_under_its_id_at_once_removes_the_members_of_its_previous_run() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), "test:").await.unwrap();
    let (n1, n1_runtime) = killable_node(redis.url(), "n1");
    let n2 = cluster_node(&redis.url(), "n2", SignalingConfig::default()).await;
    let mut ann = Client::connect(n1.addr).await;
    let mut bob = Client::connect(n2.addr).await;
    ann.join("r", "Ann").await;
    bob.join("r", "Bob").await;
    ann.recv_type("participant-joined").await;
    assert_eq!(listed(&store).await, ["Ann", "Bob"]);

    // Killed, and back under the same id well within its entry's TTL.
    n1_runtime.shutdown_background();
    let n1 = cluster_node(&redis.url(), "n1", SignalingConfig::default()).await;

    // Ann belonged to the previous run: she leaves the room.
    let left = bob.recv_type_within("participant-left", BOUND).await;
    assert_eq!(left["id"], ann.id.as_str());
    assert_eq!(listed(&store).await, ["Bob"]);

    // The new run serves the room like any node.
    let mut cy = Client::connect(n1.addr).await;
    let jc = cy.join("r", "Cy").await;
    assert_eq!(jc["node"], "n1");
    assert_eq!(jc["participants"][0]["name"], "Bob");
    assert_eq!(jc["participants"].as_array().unwrap().len(), 1);
    bob.recv_type("participant-joined").await;
}
