//! A configuration file as the checks see it, whatever its syntax: sections
//! of named options, each with the line it is on. TOML (`[table]`,
//! `[[array]]`, the top level) and UCI (`config TYPE`) both become this,
//! so that one field-by-field conversion serves both and treats them alike.

/// The sections of one file, in file order per kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    pub sections: Vec<Section>,
}

/// One section: a TOML table (the top level is kind `""`), one element of
/// a TOML array of tables, or a UCI `config TYPE` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Section {
    pub kind: String,
    /// Its place among the sections of its kind, from 0.
    pub index: usize,
    /// The line of its header; 0 for the TOML top level.
    pub line: usize,
    /// Written as one of several (`[[site]]`, any UCI section), not as a
    /// single table (`[wireguard]`).
    pub repeated: bool,
    pub entries: Vec<Entry>,
}

/// One option; a name appears once per section (UCI's repeated `option`
/// lines are settled as libuci does before this).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: String,
    pub line: usize,
    pub value: Value,
}

/// A list item, with its own line (a list may span several).
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub line: usize,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Untyped text (UCI): parsed as whatever the option needs.
    Text(String),
    /// A TOML string.
    String(String),
    Integer(i128),
    Bool(bool),
    Array(Vec<Item>),
    /// A value no option of ours takes (float, date, nested table).
    Other(&'static str),
}

impl Value {
    /// What the value is, for "expected X, found Y".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Text(_) | Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Bool(_) => "a boolean",
            Value::Array(_) => "an array",
            Value::Other(what) => what,
        }
    }
}

impl Document {
    /// The sections of one kind, in file order.
    pub fn sections_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.kind == kind)
    }
}

impl Section {
    /// The option `name`, if set.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.name == name)
    }
}
