//! Randomness from the OS for the engines' nonce generators: the engines
//! take their generator at construction (a fixed seed in tests, so runs
//! repeat), and the daemons seed it here.

use std::io;

/// A seed from the OS; fails only when the OS has no randomness to give.
pub fn seed() -> io::Result<u64> {
    let mut seed = [0; 8];
    getrandom::fill(&mut seed)
        .map_err(|e| io::Error::other(format!("no randomness for nonces: {e}")))?;
    Ok(u64::from_ne_bytes(seed))
}
