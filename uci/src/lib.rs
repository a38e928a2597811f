//! OpenWrt UCI configuration files (`/etc/config/*`): a parser that reads
//! them as libuci does, and a writer whose output reads back the same.
//!
//! ```
//! let config = uci::parse(
//!     "config agent 'main'\n\
//!      \toption listen_port '4342'\n\
//!      \tlist overlay 'fd00:1::/64'\n\
//!      \tlist overlay '10.9.0.0/16'\n",
//! )
//! .unwrap();
//! let agent = config.sections_of("agent").next().unwrap();
//! assert_eq!(agent.option("listen_port"), Some("4342"));
//! assert_eq!(agent.list("overlay"), ["fd00:1::/64", "10.9.0.0/16"]);
//! assert_eq!(uci::parse(&uci::write(&config).unwrap()).unwrap(), config);
//! ```
//!
//! Where we part from libuci on purpose (its behaviour there loses data
//! silently or reads a multi-package stream as one file):
//! - `;` outside quotes always ends a command. libuci honours it only with
//!   whitespace around it and otherwise may drop the rest of the line.
//! - A second `package` line is an error; libuci ignores it when loading
//!   a file.
//! - NUL bytes are an error; libuci's C strings stop at them.

mod error;
mod lexer;
mod model;
pub mod names;
mod parser;
mod writer;

pub use error::{ParseError, ParseErrorKind, WriteError};
pub use model::{Config, OptionKind, Section, UciOption, Value};
pub use parser::{parse, parse_bytes};
pub use writer::write;
