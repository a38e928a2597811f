//! Zero-touch enrolment: a node with a token (`lispguard join`) becomes a
//! site without an edit of the configuration. It sends a Map-Register to
//! the underlay listener with the I bit set: the Site-ID is the token's id,
//! the xTR-ID the node's own random id, one record per EID it asks for (the
//! token's pool or prefixes) carrying its WireGuard key, authenticated with
//! the key derived from the token's secret. This module decides on it:
//! which token, whether it still enrols, a replay, the EIDs and control
//! address to give; the engine then adds the site and answers.
//!
//! The node's own Map-Register key never crosses the underlay: both sides
//! derive it from the X25519 of their WireGuard keys
//! ([`Token::site_key_of`]).

use crate::config::{Peer, Site};
use crate::issue::{Grant, Issued, State};
use crate::metrics::DropReason;
use crate::token::{Token, TokenId};
use ipnet::IpNet;
use lisp::{EidPrefix, MapRegister};
use netconf::PublicKey;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Nonces remembered per token, against replays: a replayed enrolment is
/// one of the last few.
const NONCES_KEPT: usize = 64;

/// The `[enrolment]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrolmentConfig {
    /// Where enrolled nodes' control addresses come from.
    pub control_pool: IpNet,
}

/// An enrolled node: a site that came with a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub public_key: PublicKey,
    pub control_address: IpAddr,
    pub eids: Vec<EidPrefix>,
    /// The node's own id (its xTR-ID): the same node asking again is
    /// answered the same.
    pub xtr_id: u128,
    pub token: TokenId,
    pub group: Option<String>,
    /// Its Map-Register key, derived from the two WireGuard keys.
    pub key: String,
    /// Unix seconds.
    pub created: i64,
}

impl Node {
    /// The site it is, as a configured one would be.
    pub fn site(&self) -> Site {
        Site {
            name: self.name.clone(),
            key: self.key.clone().into_bytes(),
            wireguard: Some(Peer {
                public_key: self.public_key,
                control_address: self.control_address,
            }),
            eids: self.eids.clone(),
            accept_more_specifics: false,
            may_resolve: None,
        }
    }
}

/// What an accepted enrolment gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolled {
    pub node: Node,
    /// A node enrolled just now (else: one asking again).
    pub new: bool,
    /// The token's uses left after it.
    pub uses_left: u32,
}

/// The tokens and the nodes they enrolled.
pub struct Enrolment {
    config: EnrolmentConfig,
    /// The map-server's WireGuard private key: the nodes' keys derive from
    /// it.
    private_key: [u8; 32],
    tokens: HashMap<TokenId, Issued>,
    nodes: Vec<Node>,
    nonces: HashMap<TokenId, VecDeque<u64>>,
}

impl Enrolment {
    pub fn new(
        config: EnrolmentConfig,
        private_key: [u8; 32],
        tokens: Vec<Issued>,
        nodes: Vec<Node>,
    ) -> Enrolment {
        Enrolment {
            config,
            private_key,
            tokens: tokens.into_iter().map(|t| (t.id, t)).collect(),
            nodes,
            nonces: HashMap::new(),
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    pub fn private_key(&self) -> &[u8; 32] {
        &self.private_key
    }

    /// A token issued (`token create`) or revoked since the start.
    pub fn keep_token(&mut self, token: Issued) {
        self.tokens.insert(token.id, token);
    }

    pub fn revoke_token(&mut self, id: TokenId) {
        if let Some(token) = self.tokens.get_mut(&id) {
            token.revoked = true;
        }
    }

    /// The key that verifies an enrolment naming Site-ID `site_id`.
    pub fn key_of(&self, site_id: u64) -> Option<(TokenId, [u8; 32])> {
        let id = TokenId(site_id.to_be_bytes());
        self.tokens.get(&id).map(|t| (id, t.register_key))
    }

    /// Decides on an enrolment Map-Register, verified with token `id`'s
    /// key; `taken` says whether an address is some site's already (an
    /// EID registered or configured, a control address). Nothing changes
    /// when it is refused.
    pub fn enrol(
        &mut self,
        now: i64,
        id: TokenId,
        register: &MapRegister,
        taken: impl Fn(&EidPrefix) -> bool,
        control_taken: impl Fn(IpAddr) -> bool,
    ) -> Result<Enrolled, DropReason> {
        let token = self.tokens.get(&id).ok_or(DropReason::UnknownToken)?;
        let xtr_id = register.body.xtr.map(|x| x.xtr_id).unwrap_or_default();
        let public_key = register
            .body
            .records
            .iter()
            .next()
            .and_then(|r| r.eid.wireguard_key())
            .ok_or(DropReason::Malformed)?;
        let nonce = register.body.nonce;
        if self.nonces.get(&id).is_some_and(|n| n.contains(&nonce)) {
            return Err(DropReason::Replayed);
        }
        // The same node again (its Map-Notify was lost): the same answer,
        // no use taken.
        if let Some(node) = self
            .nodes
            .iter()
            .find(|n| n.token == id && n.xtr_id == xtr_id && n.public_key == public_key)
        {
            remember(self.nonces.entry(id).or_default(), nonce);
            return Ok(Enrolled {
                node: node.clone(),
                new: false,
                uses_left: token.uses_left,
            });
        }
        if token.state(now) != State::Active {
            return Err(DropReason::TokenNotActive);
        }
        let eids = match &token.grant {
            Grant::Prefixes(prefixes) => prefixes
                .iter()
                .map(|p| EidPrefix::new(token.iid, *p))
                .collect(),
            Grant::Pool(pool) => {
                let free = pool
                    .hosts()
                    .map(|a| EidPrefix::new(token.iid, IpNet::from(a)))
                    .find(|eid| !taken(eid) && !self.holds(eid));
                vec![free.ok_or(DropReason::PoolExhausted)?]
            }
        };
        let control_address = self
            .config
            .control_pool
            .hosts()
            .find(|a| !control_taken(*a) && !self.nodes.iter().any(|n| n.control_address == *a))
            .ok_or(DropReason::PoolExhausted)?;
        remember(self.nonces.entry(id).or_default(), nonce);
        let Some(token) = self.tokens.get_mut(&id) else {
            return Err(DropReason::UnknownToken);
        };
        token.uses_left -= 1;
        let node = Node {
            // Unique as its control address is.
            name: format!("node-{control_address}"),
            public_key,
            control_address,
            eids,
            xtr_id,
            token: id,
            group: token.group.clone(),
            key: Token::site_key_of(&self.private_key, &public_key),
            created: now,
        };
        self.nodes.push(node.clone());
        Ok(Enrolled {
            node,
            new: true,
            uses_left: token.uses_left,
        })
    }

    /// Whether an enrolled node holds `eid` already.
    fn holds(&self, eid: &EidPrefix) -> bool {
        self.nodes
            .iter()
            .flat_map(|n| &n.eids)
            .any(|e| e.contains(eid) || eid.contains(e))
    }
}

fn remember(nonces: &mut VecDeque<u64>, nonce: u64) {
    if nonces.len() >= NONCES_KEPT {
        nonces.pop_front();
    }
    nonces.push_back(nonce);
}
