//! The node the in-process benchmarks run the engine as: site A's xTR
//! (10.1.0.0/24 in instance 1000) with one map-server.

use agent::engine::{MapServerSettings, Settings};
use std::time::Duration;

pub fn site_a(cache_capacity: usize) -> Settings {
    Settings {
        iid: 1000,
        eids: vec!["[1000] 10.1.0.0/24".parse().unwrap()],
        control_address: "100.64.0.2".parse().unwrap(),
        overlay: vec!["10.0.0.0/8".parse().unwrap()],
        public_key: [0xaa; 32],
        listen_port: 51820,
        register_interval: Duration::from_secs(60),
        record_ttl: 15,
        map_servers: vec![MapServerSettings {
            control_address: "100.64.0.1".parse().unwrap(),
            key: b"key".to_vec(),
        }],
        cache_capacity,
    }
}
