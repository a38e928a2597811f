//! Enrolment with tokens, driven through the engine with a made-up clock:
//! a node's Map-Register on the underlay makes it a site, answered with
//! its control address, the map-server's mapping and its EIDs; a forged,
//! unknown, used-up or replayed one gets no answer and is counted. A
//! map-server of a group enrols with a token another issued, giving the
//! addresses the first gave.

mod common;

use common::{request, A};
use ipnet::IpNet;
use lisp::{auth, Action, EidPrefix, MapNotify, Message};
use mapserver::config::Config;
use mapserver::engine::MapServer;
use mapserver::enrolment::Enrolment;
use mapserver::issue::Request;
use mapserver::metrics::{DropReason, Metrics};
use mapserver::outbox::{Outbox, OutboxExt};
use mapserver::token::Token;
use netconf::enrolment::Asking;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const LISTENER: &str = "192.0.2.1:4342";

struct World {
    server: MapServer,
    metrics: Arc<Metrics>,
    now: Instant,
    out: Outbox,
    ms_private: [u8; 32],
}

impl World {
    /// A map-server with site a configured, and a token of `uses` for a
    /// pool of `pool`.
    fn new(pool: &str, uses: u32) -> (World, Token) {
        World::with_token(&format!("iid=1000 uses={uses} pool={pool}"))
    }

    /// The same with the token `token create` asks for with `request`.
    fn with_token(request: &str) -> (World, Token) {
        World::in_group(request, "")
    }

    /// The same, `[enrolment]` ending with `group` (its group's options).
    fn in_group(request: &str, group: &str) -> (World, Token) {
        let text = format!(
            "control_address = \"100.64.0.1\"\n[wireguard]\nprivate_key_file = \"/dev/null\"\n\
             [lisp]\nrate_limit = 0\nunderlay_listen = \"{LISTENER}\"\n\
             [enrolment]\ncontrol_pool = \"100.64.1.0/24\"\n{group}\n{}",
            A.toml(0)
        );
        let config = Config::parse(Path::new("ms.toml"), &text).unwrap();
        let metrics = Arc::new(Metrics::default());
        let now = Instant::now();
        let mut server = MapServer::new(&config, metrics.clone(), now, fastrand::Rng::with_seed(3));
        let ms_private = netconf::generate_private_key();
        let request = Request::parse(request).unwrap();
        let (token, issued) = request
            .issue(
                |_| None,
                Some(LISTENER.parse().unwrap()),
                netconf::public_key(&ms_private),
                config.enrolment.as_ref().unwrap(),
                0,
            )
            .unwrap();
        let enrolment = Enrolment::new(
            config.enrolment.clone().unwrap(),
            ms_private,
            vec![issued],
            Vec::new(),
        );
        let mut out = Outbox::default();
        // The token was issued at unix second 0, with no expiry.
        server.set_enrolment(enrolment, &config, now, 10, &mut out);
        let world = World {
            server,
            metrics,
            now,
            out,
            ms_private,
        };
        (world, token)
    }

    /// `msg` from `from` to the underlay listener; what was sent back.
    fn underlay(&mut self, from: &str, msg: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
        self.out.clear();
        self.server
            .handle_underlay(self.now, from.parse().unwrap(), msg, &mut self.out);
        let sent = self
            .out
            .datagrams()
            .map(|(to, b)| (to, b.to_vec()))
            .collect();
        sent
    }
}

/// A node's enrolment Map-Register, as `lispguard join` writes it.
fn enrolment(token: &Token, node: &[u8; 32], xtr_id: u128, nonce: u64) -> Vec<u8> {
    write(token, node, xtr_id, nonce, None)
}

/// The same, asking for `control` and `eids` (what another map-server of
/// the group gave).
fn asking(
    token: &Token,
    node: &[u8; 32],
    xtr_id: u128,
    nonce: u64,
    control: &str,
    eids: &[&str],
) -> Vec<u8> {
    let control = control.parse::<IpNet>().unwrap().addr();
    let eids: Vec<EidPrefix> = eids.iter().map(|e| e.parse().unwrap()).collect();
    let asking = Asking {
        control_address: control,
        eids: &eids,
    };
    write(token, node, xtr_id, nonce, Some(asking))
}

fn write(
    token: &Token,
    node: &[u8; 32],
    xtr_id: u128,
    nonce: u64,
    asking: Option<Asking>,
) -> Vec<u8> {
    let rloc = "198.51.100.7:51820".parse().unwrap();
    netconf::enrolment::write(token, node, rloc, xtr_id, nonce, asking).unwrap()
}

/// The answer's records: control address, the map-server's, the EIDs.
fn answer(token: &Token, sent: &[(SocketAddr, Vec<u8>)]) -> Vec<String> {
    assert_eq!(sent.len(), 1, "one Map-Notify");
    let bytes: &'static [u8] = sent[0].1.clone().leak();
    let verified = auth::verify(bytes, &token.register_key()).expect("signed with the token's key");
    let notify = MapNotify::parse(&verified).unwrap();
    notify
        .body
        .records
        .iter()
        .map(|r| {
            EidPrefix::from_address(&r.eid, r.eid_mask_len)
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_node_enrols_into_a_pool_and_registers_as_a_site_with_its_derived_key() {
    let (mut w, token) = World::new("10.9.0.0/29", 5);
    let node_private = netconf::generate_private_key();
    let node = netconf::public_key(&node_private);
    let register = enrolment(&token, &node, 7, 1);
    let sent = w.underlay("198.51.100.7:40000", &register);
    assert_eq!(sent[0].0, "198.51.100.7:40000".parse().unwrap());
    assert_eq!(
        answer(&token, &sent),
        [
            "[0] 100.64.1.1/32",
            "[0] 100.64.0.1/32",
            "[1000] 10.9.0.1/32"
        ]
    );
    // A second node gets the next addresses.
    let other = netconf::public_key(&netconf::generate_private_key());
    let sent = w.underlay("198.51.100.8:40000", &enrolment(&token, &other, 8, 2));
    assert_eq!(
        answer(&token, &sent),
        [
            "[0] 100.64.1.2/32",
            "[0] 100.64.0.1/32",
            "[1000] 10.9.0.2/32"
        ]
    );
    // The first one asking again (its answer was lost) gets the same.
    let sent = w.underlay("198.51.100.7:40000", &enrolment(&token, &node, 7, 3));
    assert_eq!(answer(&token, &sent)[2], "[1000] 10.9.0.1/32");
    // It is a site: its Map-Register through the tunnel, signed with the
    // key both sides derive, is taken.
    let site_key = Token::site_key(&node_private, &netconf::public_key(&w.ms_private));
    assert_eq!(Token::site_key(&w.ms_private, &node), site_key);
    let rloc = "198.51.100.7:51820".parse().unwrap();
    let register = A.register_with(4, "[1000] 10.9.0.1/32", rloc, site_key.as_bytes(), node);
    w.out.clear();
    let control = "100.64.1.1:4342".parse().unwrap();
    w.server.handle(w.now, control, &register, &mut w.out);
    assert_eq!(w.out.datagrams().count(), 1, "its Map-Notify");
    assert_eq!(w.metrics.drops(DropReason::AuthFailed), 0);
    assert!(w
        .server
        .lookup(&"[1000] 10.9.0.1/32".parse().unwrap())
        .is_some());
}

#[test]
fn forged_unknown_used_up_and_replayed_enrolments_get_no_answer_and_are_counted() {
    let (mut w, token) = World::new("10.9.0.0/29", 1);
    let node = netconf::public_key(&netconf::generate_private_key());
    let forged = enrolment(
        &Token {
            secret: [7; 32],
            ..token.clone()
        },
        &node,
        7,
        1,
    );
    assert!(w.underlay("198.51.100.7:40000", &forged).is_empty());
    assert_eq!(w.metrics.drops(DropReason::AuthFailed), 1);
    let unknown = Token::generate(token.map_servers.clone(), token.grant.clone(), None).unwrap();
    let stranger = enrolment(&unknown, &node, 7, 1);
    assert!(w.underlay("198.51.100.7:40000", &stranger).is_empty());
    assert_eq!(w.metrics.drops(DropReason::UnknownToken), 1);
    let first = enrolment(&token, &node, 7, 2);
    assert_eq!(w.underlay("198.51.100.7:40000", &first).len(), 1);
    // The same bytes again: a replay.
    assert!(w.underlay("198.51.100.7:40000", &first).is_empty());
    assert_eq!(w.metrics.drops(DropReason::Replayed), 1);
    // Its one use is spent: another node is refused.
    let other = netconf::public_key(&netconf::generate_private_key());
    let spent = enrolment(&token, &other, 8, 3);
    assert!(w.underlay("198.51.100.8:40000", &spent).is_empty());
    assert_eq!(w.metrics.drops(DropReason::TokenNotActive), 1);
}

#[test]
fn a_pool_runs_out() {
    let (mut w, token) = World::new("10.9.0.0/30", 5);
    for (n, expect) in [(1u8, 1usize), (2, 1), (3, 0)] {
        let node = netconf::public_key(&netconf::generate_private_key());
        let msg = enrolment(&token, &node, u128::from(n), u64::from(n));
        assert_eq!(
            w.underlay("198.51.100.7:40000", &msg).len(),
            expect,
            "node {n}"
        );
    }
    assert_eq!(w.metrics.drops(DropReason::PoolExhausted), 1);
}

#[test]
fn an_enrolled_node_is_renamed_with_what_it_registered_and_a_configured_site_is_not() {
    let (mut w, token) = World::new("10.9.0.0/29", 5);
    let node_private = netconf::generate_private_key();
    let node = netconf::public_key(&node_private);
    let msg = enrolment(&token, &node, 7, 1);
    assert_eq!(w.underlay("198.51.100.7:40000", &msg).len(), 1);
    let site_key = Token::site_key(&node_private, &netconf::public_key(&w.ms_private));
    let rloc = "198.51.100.7:51820".parse().unwrap();
    let register = A.register_with(4, "[1000] 10.9.0.1/32", rloc, site_key.as_bytes(), node);
    w.server.handle(
        w.now,
        "100.64.1.1:4342".parse().unwrap(),
        &register,
        &mut w.out,
    );
    w.out.clear();
    w.server
        .rename("node-100.64.1.1", "robot-7", &mut w.out)
        .unwrap();
    let renamed: Vec<_> = w.out.changes().cloned().collect();
    assert_eq!(
        renamed,
        [mapserver::change::Change::Renamed {
            from: "node-100.64.1.1".into(),
            to: "robot-7".into()
        }]
    );
    let (owner, _) = w
        .server
        .lookup(&"[1000] 10.9.0.1/32".parse().unwrap())
        .unwrap();
    assert_eq!(owner.as_deref(), Some("robot-7"));
    let mut out = Outbox::default();
    let taken = w.server.rename("robot-7", "a", &mut out).unwrap_err();
    assert!(taken.contains("taken"), "{taken}");
    let configured = w.server.rename("a", "b", &mut out).unwrap_err();
    assert!(configured.contains("no enrolled node"), "{configured}");
    let spaced = w.server.rename("robot-7", "robot 8", &mut out).unwrap_err();
    assert!(spaced.contains("no spaces"), "{spaced}");
}

#[test]
fn an_expired_token_enrols_no_one() {
    // Issued at unix second 0 for a minute; the map-server's clock says 10.
    let (mut w, token) = World::with_token("iid=1000 uses=5 expires=60 pool=10.9.0.0/29");
    let node = netconf::public_key(&netconf::generate_private_key());
    let msg = enrolment(&token, &node, 7, 1);
    assert_eq!(w.underlay("198.51.100.7:40000", &msg).len(), 1, "in time");
    w.now += std::time::Duration::from_secs(51);
    let other = netconf::public_key(&netconf::generate_private_key());
    let late = enrolment(&token, &other, 8, 2);
    assert!(w.underlay("198.51.100.8:40000", &late).is_empty());
    assert_eq!(w.metrics.drops(DropReason::TokenNotActive), 1);
}

const GROUP: &str = "group_secret = \"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\"\n\
                     group = [\"192.0.2.2:4342 BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY=\"]";

#[test]
fn a_map_server_of_the_group_enrols_with_a_token_another_issued_giving_the_same_addresses() {
    let request = "iid=1000 uses=2 pool=10.9.0.0/29";
    let (mut first, token) = World::in_group(request, GROUP);
    assert_eq!(token.map_servers.len(), 2, "{token:?}");
    assert_eq!(
        token.secret,
        Token::group_secret(&[9; 32], token.id, &token.grant)
    );
    // The other map-server of the group, which never saw the token.
    let (mut second, _) = World::in_group("iid=1 uses=1 pool=10.99.0.0/24", GROUP);
    let node = netconf::public_key(&netconf::generate_private_key());
    let sent = first.underlay("198.51.100.7:40000", &enrolment(&token, &node, 7, 1));
    let given = answer(&token, &sent);
    assert_eq!(
        given,
        [
            "[0] 100.64.1.1/32",
            "[0] 100.64.0.1/32",
            "[1000] 10.9.0.1/32"
        ]
    );
    // Another node took the first address at the second map-server.
    let other = netconf::public_key(&netconf::generate_private_key());
    let sent = second.underlay("198.51.100.8:40000", &enrolment(&token, &other, 8, 2));
    assert_eq!(answer(&token, &sent)[2], "[1000] 10.9.0.1/32");
    // It kept the token, to be stored with its uses.
    let learnt: Vec<_> = second
        .out
        .changes()
        .filter_map(|c| match c {
            mapserver::change::Change::TokenLearnt(t) => Some((t.id, t.uses_left)),
            _ => None,
        })
        .collect();
    assert_eq!(learnt, [(token.id, 1)]);
    // So the first node, asking the second for what the first gave, is
    // refused there: its addresses would differ.
    let msg = asking(
        &token,
        &node,
        7,
        3,
        "100.64.1.1/32",
        &["[1000] 10.9.0.1/32"],
    );
    assert!(second.underlay("198.51.100.7:40000", &msg).is_empty());
    assert_eq!(second.metrics.drops(DropReason::AddressTaken), 1);
    // Addresses outside the grant are refused.
    for (n, control, eid) in [
        (5, "100.64.1.10/32", "[1000] 10.8.0.5/32"),
        (6, "100.64.1.10/32", "[7] 10.9.0.6/32"),
        (7, "100.64.1.10/32", "[1000] 10.9.0.0/30"),
        (8, "100.64.2.1/32", "[1000] 10.9.0.6/32"),
    ] {
        let stranger = netconf::public_key(&netconf::generate_private_key());
        let msg = asking(&token, &stranger, u128::from(n), n, control, &[eid]);
        assert!(
            second.underlay("198.51.100.9:40000", &msg).is_empty(),
            "{control} {eid}"
        );
    }
    assert_eq!(second.metrics.drops(DropReason::AddressTaken), 5);
    // Free ones within it are given as asked.
    let msg = asking(
        &token,
        &node,
        7,
        4,
        "100.64.1.9/32",
        &["[1000] 10.9.0.5/32"],
    );
    let sent = second.underlay("198.51.100.7:40000", &msg);
    assert_eq!(
        answer(&token, &sent),
        [
            "[0] 100.64.1.9/32",
            "[0] 100.64.0.1/32",
            "[1000] 10.9.0.5/32"
        ]
    );
    // Its two uses are spent at the second too.
    let late = netconf::public_key(&netconf::generate_private_key());
    let msg = enrolment(&token, &late, 9, 9);
    assert!(second.underlay("198.51.100.9:40000", &msg).is_empty());
    assert_eq!(second.metrics.drops(DropReason::TokenNotActive), 1);
}

#[test]
fn a_group_token_with_a_changed_grant_or_from_another_group_is_refused() {
    let (_, token) = World::in_group("iid=1000 uses=1 pool=10.9.0.0/29", GROUP);
    let (mut second, _) = World::in_group("iid=1 uses=1 pool=10.99.0.0/24", GROUP);
    let node = netconf::public_key(&netconf::generate_private_key());
    // More uses written into the grant: another key than the token's.
    let greedy = Token {
        grant: token.grant.replace("uses=1", "uses=1000"),
        ..token.clone()
    };
    let msg = enrolment(&greedy, &node, 7, 1);
    assert!(second.underlay("198.51.100.7:40000", &msg).is_empty());
    assert_eq!(second.metrics.drops(DropReason::AuthFailed), 1);
    // A token of another group's secret.
    let (_, foreign) = World::in_group(
        "iid=1000 uses=1 pool=10.9.0.0/29",
        &GROUP.replace("CQkJ", "CAgI"),
    );
    let msg = enrolment(&foreign, &node, 7, 2);
    assert!(second.underlay("198.51.100.7:40000", &msg).is_empty());
    assert_eq!(second.metrics.drops(DropReason::AuthFailed), 2);
    // A map-server of no group knows no token it did not issue.
    let (mut alone, _) = World::new("10.99.0.0/24", 1);
    let msg = enrolment(&token, &node, 7, 3);
    assert!(alone.underlay("198.51.100.7:40000", &msg).is_empty());
    assert_eq!(alone.metrics.drops(DropReason::UnknownToken), 1);
    // The token itself is taken there.
    let msg = enrolment(&token, &node, 7, 4);
    assert_eq!(second.underlay("198.51.100.7:40000", &msg).len(), 1);
}

#[test]
fn the_nodes_of_a_policy_group_resolve_what_its_policy_names_and_no_more() {
    let policy = "[[policy]]\ngroup = \"robots\"\nmay_resolve = [\"group:robots\"]\n";
    let (mut w, token) = World::in_group("iid=1000 uses=5 group=robots pool=10.9.0.0/29", policy);
    let ms_public = netconf::public_key(&w.ms_private);
    // Two robots enrol and register through the tunnel; so does site a.
    for n in 1..=2u8 {
        let private = netconf::generate_private_key();
        let public = netconf::public_key(&private);
        let msg = enrolment(&token, &public, n.into(), n.into());
        assert_eq!(w.underlay("198.51.100.7:40000", &msg).len(), 1);
        let key = Token::site_key(&private, &ms_public);
        let rloc = SocketAddr::from(([198, 51, 100, n], 51820));
        let eid = format!("[1000] 10.9.0.{n}/32");
        let register = A.register_with(4, &eid, rloc, key.as_bytes(), public);
        let from = SocketAddr::from(([100, 64, 1, n], 4342));
        w.out.clear();
        w.server.handle(w.now, from, &register, &mut w.out);
    }
    let a_rloc = "192.0.2.10:51820".parse().unwrap();
    w.server.handle(
        w.now,
        A.control_socket(0),
        &A.register(1, "[1000] 10.1.0.0/24", a_rloc),
        &mut w.out,
    );
    // How a Map-Request from `from` for `eid` is answered: the actions of
    // the Map-Replies to it, and the pushes to others (an allowed first
    // contact may hold its reply until the destination acknowledges).
    let answer = |w: &mut World, from: SocketAddr, eid: &str| {
        w.out.clear();
        w.server.handle(w.now, from, &request(9, eid), &mut w.out);
        let sent: Vec<(SocketAddr, Vec<u8>)> =
            w.out.datagrams().map(|(to, b)| (to, b.to_vec())).collect();
        let replies: Vec<Action> = sent
            .iter()
            .filter(|(to, _)| *to == from)
            .filter_map(|(_, b)| match Message::parse(b) {
                Ok(Message::MapReply(r)) => r.records.get(0).map(|r| r.action),
                _ => None,
            })
            .collect();
        (replies, sent.iter().filter(|(to, _)| *to != from).count())
    };
    let robot = SocketAddr::from(([100, 64, 1, 1], 4342));
    let denied = (vec![Action::DROP_POLICY_DENIED], 0);
    assert_eq!(answer(&mut w, robot, "[1000] 10.1.0.9/32"), denied);
    let (replies, pushes) = answer(&mut w, robot, "[1000] 10.9.0.2/32");
    assert!(!replies.contains(&Action::DROP_POLICY_DENIED) && pushes == 1);
    // Site a has no policy: it resolves the robots.
    let (replies, pushes) = answer(&mut w, A.control_socket(0), "[1000] 10.9.0.1/32");
    assert!(!replies.contains(&Action::DROP_POLICY_DENIED) && pushes == 1);
}
