//! The lispguard agent: resolves overlay destinations on demand over LISP
//! and configures WireGuard peers for them.

pub mod cache;
pub mod config;
pub mod engine;
