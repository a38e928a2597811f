//! The lispguard map-server: the mapping database sites register their
//! EID-Prefixes and WireGuard keys with, answering Map-Requests itself
//! (proxy reply) and pushing the requester's mapping to the destination.
//!
//! [`engine`] makes every protocol decision without I/O; [`server`] runs it
//! over UDP sockets.

pub mod admission;
pub mod answer;
pub mod change;
pub mod config;
pub mod control;
pub mod db;
pub mod engine;
pub mod enrolment;
pub mod first_contact;
pub mod issue;
pub mod metrics;
pub mod outbox;
pub mod push;
pub mod relay;
pub mod server;
pub mod statics;
pub mod store;
pub use netconf::token;
pub mod tunnel;
