//! Zero-touch enrolment: a node with a token (`lispguard join`) becomes a
//! site without an edit of the configuration. It sends a Map-Register to
//! the underlay listener (its layout: [`netconf::enrolment`]): the Site-ID
//! is the token's id, and it carries the token's grant and what the node
//! asks for.
//!
//! A node asks for addresses when another map-server of the group gave
//! them: each map-server of a group verifies any of the group's tokens from
//! the grant and the secret they share, and learns the token when it first
//! sees it. This module decides on an enrolment: which token, whether it
//! still enrols, a replay, the EIDs and control address to give; the
//! engine then adds the site and answers.
//!
//! The node's own Map-Register key never crosses the underlay: both sides
//! derive it from the X25519 of their WireGuard keys
//! ([`Token::site_key`]).

use crate::config::{Peer, Site};
use crate::issue::{Grant, Issued, State};
use crate::metrics::DropReason;
use crate::token::{MapServer, Token, TokenId};
use ipnet::IpNet;
use lisp::{EidPrefix, MapRegister, Record};
use netconf::enrolment::Enrolling;
use netconf::PublicKey;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Nonces remembered per token, against replays: a replayed enrolment is
/// one of the last few.
const NONCES_KEPT: usize = 64;

/// The `[enrolment]` section.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolmentConfig {
    /// Where enrolled nodes' control addresses come from.
    pub control_pool: IpNet,
    /// The secret the map-servers of a group share: the secrets of the
    /// group's tokens derive from it.
    pub group_secret: Option<[u8; 32]>,
    /// The group's other map-servers, named in the tokens this one issues.
    pub group: Vec<MapServer>,
    /// What the nodes of a policy group may resolve (`[[policy]]`).
    pub policies: Vec<Policy>,
}

/// A `[[policy]]`: the enrolled nodes of `group` may resolve only the
/// sites and groups `may_resolve` names (as a site's `may_resolve`); the
/// nodes of a group with no policy, any site of their instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub group: String,
    pub may_resolve: Vec<String>,
}

// The group secret stays out of logs.
impl std::fmt::Debug for EnrolmentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentConfig")
            .field("control_pool", &self.control_pool)
            .field("group_secret", &self.group_secret.map(|_| "..."))
            .field("group", &self.group)
            .field("policies", &self.policies)
            .finish()
    }
}

/// The grant an enrolment carries, read before it is verified: the key
/// of a group token derives from it.
pub fn untrusted_grant<'a>(records: impl Iterator<Item = Record<'a>>) -> Option<&'a str> {
    Enrolling::read(records)?.grant
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
    /// The site it is, as a configured one would be, before a policy.
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
            group: self.group.clone(),
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
    /// A group token this map-server had not seen, kept now.
    pub learnt: Option<Issued>,
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

    pub fn config(&self) -> &EnrolmentConfig {
        &self.config
    }

    /// A changed `[enrolment]` (a reload): the pools, the group, the
    /// policies.
    pub fn set_config(&mut self, config: EnrolmentConfig) {
        self.config = config;
    }

    /// The site `node` is, with its group's policy.
    pub fn site_of(&self, node: &Node) -> Site {
        let policy = self
            .config
            .policies
            .iter()
            .find(|p| node.group.as_ref() == Some(&p.group));
        Site {
            may_resolve: policy.map(|p| p.may_resolve.clone()),
            ..node.site()
        }
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

    /// The key that verifies an enrolment naming Site-ID `site_id`: a
    /// token this map-server knows, else a group token's, from the grant
    /// the enrolment carries.
    pub fn key_of(&self, site_id: u64, grant: Option<&str>) -> Option<(TokenId, [u8; 32])> {
        let id = TokenId(site_id.to_be_bytes());
        if let Some(token) = self.tokens.get(&id) {
            return Some((id, token.register_key));
        }
        let secret = Token::group_secret(self.config.group_secret.as_ref()?, id, grant?);
        Some((id, Token::register_key_of(&secret)))
    }

    /// Decides on an enrolment Map-Register, verified with token `id`'s
    /// key (`key`); `taken` says whether an address is some site's already
    /// (an EID registered or configured, a control address). Nothing
    /// changes when it is refused.
    pub fn enrol(
        &mut self,
        now: i64,
        (id, key): (TokenId, [u8; 32]),
        register: &MapRegister,
        taken: impl Fn(&EidPrefix) -> bool,
        control_taken: impl Fn(IpAddr) -> bool,
    ) -> Result<Enrolled, DropReason> {
        let asked = Enrolling::read(register.body.records.iter()).ok_or(DropReason::Malformed)?;
        // A group token seen for the first time is kept when it enrols.
        let (mut token, learnt) = match self.tokens.get(&id) {
            Some(token) => (token.clone(), false),
            None => {
                let grant = asked.grant.ok_or(DropReason::UnknownToken)?;
                let token =
                    Issued::from_grant(id, key, grant, now).map_err(|_| DropReason::Malformed)?;
                (token, true)
            }
        };
        let xtr_id = register.body.xtr.map(|x| x.xtr_id).unwrap_or_default();
        let public_key = asked.public_key;
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
                learnt: None,
            });
        }
        if token.state(now) != State::Active {
            return Err(DropReason::TokenNotActive);
        }
        let free = |eid: &EidPrefix| !taken(eid) && !self.holds(eid);
        let given: Vec<EidPrefix> = match &token.grant {
            Grant::Prefixes(prefixes) => prefixes
                .iter()
                .map(|p| EidPrefix::new(token.iid, *p))
                .collect(),
            Grant::Pool(pool) => pool
                .hosts()
                .map(|a| EidPrefix::new(token.iid, IpNet::from(a)))
                .filter(free)
                .take(1)
                .collect(),
        };
        // Addresses another map-server of the group gave: the same here,
        // or none.
        let eids = match asked.eids.is_empty() {
            true if given.is_empty() => return Err(DropReason::PoolExhausted),
            true => given,
            false => {
                let within = |eid: &EidPrefix| match &token.grant {
                    Grant::Prefixes(_) => given.contains(eid),
                    Grant::Pool(pool) => {
                        eid.iid == token.iid
                            && pool.contains(&eid.prefix)
                            && eid.prefix.prefix_len() == eid.prefix.max_prefix_len()
                    }
                };
                if !asked.eids.iter().all(|e| within(e) && free(e)) {
                    return Err(DropReason::AddressTaken);
                }
                asked.eids
            }
        };
        let control_free =
            |a: IpAddr| !control_taken(a) && !self.nodes.iter().any(|n| n.control_address == a);
        let control_address = match asked.control_address {
            Some(a) if self.config.control_pool.contains(&a) && control_free(a) => a,
            Some(_) => return Err(DropReason::AddressTaken),
            None => self
                .config
                .control_pool
                .hosts()
                .find(|a| control_free(*a))
                .ok_or(DropReason::PoolExhausted)?,
        };
        remember(self.nonces.entry(id).or_default(), nonce);
        token.uses_left -= 1;
        self.tokens.insert(id, token.clone());
        let node = Node {
            // Unique as its control address is.
            name: format!("node-{control_address}"),
            public_key,
            control_address,
            eids,
            xtr_id,
            token: id,
            group: token.group.clone(),
            key: Token::site_key(&self.private_key, &public_key),
            created: now,
        };
        self.nodes.push(node.clone());
        Ok(Enrolled {
            node,
            new: true,
            uses_left: token.uses_left,
            learnt: learnt.then_some(token),
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
