//! OpenWrt UCI configuration files (stub; filled in by the uci work).
