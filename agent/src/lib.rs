//! The lispguard agent: resolves overlay destinations on demand over LISP
//! and configures WireGuard peers for them.

pub mod budget;
pub mod cache;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod inject;
pub mod join;
pub mod lookup;
pub mod metrics;
pub mod packet;
pub mod poll;
pub mod status;
pub mod tun;
pub mod uci_config;
