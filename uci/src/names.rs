//! The character rules libuci puts on names (`uci_validate_str` in util.c).
//! Names end up in shell variables (`CONFIG_<section>_<option>`), hence
//! the narrow set; types are only compared, so they get more.

/// Section and option names: `[A-Za-z0-9_]+`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Package names (the file name): `[A-Za-z0-9_-]+`.
pub fn is_package_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Section types: printable ASCII, no space (`!` to `~`).
pub fn is_section_type(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}
