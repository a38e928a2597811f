//! What a UCI file says: a package of sections, each a list of `option`
//! and `list` lines in file order.
//!
//! Every line is kept, with its line number, so a checker can point at the
//! exact place. Reading a value goes through [`Section::get`] and friends,
//! which apply libuci's rules for repeated names: a later `option`
//! replaces an earlier one, a `list` appends (and turns an earlier
//! `option` into the list's first item).
//!
//! Line numbers are where a thing came from, not what it is: `==` ignores
//! them, so a config equals itself written out and read back.

/// One config file (one UCI package).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The `package NAME` line, if the file has one. libuci names the
    /// package after the file and ignores this line when loading a file.
    pub package: Option<String>,
    pub sections: Vec<Section>,
}

/// A `config TYPE ['NAME']` block.
///
/// A named section that appears twice in a file is one section to libuci:
/// the parser appends the second block's options to the first.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The section type, e.g. `interface` or `map_server`.
    pub kind: String,
    /// `None` for an anonymous section (libuci calls it `@TYPE[i]`).
    pub name: Option<String>,
    pub options: Vec<UciOption>,
    /// The line of the `config` command; 0 when not read from a file.
    pub line: usize,
}

/// One `option NAME 'VALUE'` or `list NAME 'VALUE'` line.
#[derive(Debug, Clone)]
pub struct UciOption {
    pub kind: OptionKind,
    pub name: String,
    pub value: String,
    /// The line of the `option`/`list` command; 0 when not read from a file.
    pub line: usize,
}

/// Which command set the value: libuci keeps one value per `option` name
/// but collects every `list` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptionKind {
    Option,
    List,
}

/// An option's value after libuci's rules, with the lines that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// The `option` line that won.
    Single(&'a UciOption),
    /// The lines that make up the list, in order.
    List(Vec<&'a UciOption>),
}

impl<'a> Value<'a> {
    /// The value's strings: one for `Single`, every item for `List`.
    pub fn values(&self) -> Vec<&'a str> {
        match self {
            Value::Single(o) => vec![o.value.as_str()],
            Value::List(items) => items.iter().map(|o| o.value.as_str()).collect(),
        }
    }
}

impl Config {
    /// The sections of one type, in file order.
    pub fn sections_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.kind == kind)
    }

    /// The section with this name (section names are unique in a package).
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
    }

    pub fn section_mut(&mut self, name: &str) -> Option<&mut Section> {
        self.sections
            .iter_mut()
            .find(|s| s.name.as_deref() == Some(name))
    }
}

impl Section {
    pub fn new(kind: impl Into<String>, name: Option<String>) -> Self {
        Section {
            kind: kind.into(),
            name,
            options: Vec::new(),
            line: 0,
        }
    }

    /// The value of `name` as libuci sees it, or `None` if unset.
    ///
    /// libuci's file loader ignores `option NAME ''` (setting an empty value
    /// is a no-op there), so those lines count for nothing here either.
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        let mut value = None;
        for o in self.options.iter().filter(|o| o.name == name) {
            value = match (o.kind, value) {
                (OptionKind::Option, v) if o.value.is_empty() => v,
                (OptionKind::Option, _) => Some(Value::Single(o)),
                (OptionKind::List, None) => Some(Value::List(vec![o])),
                (OptionKind::List, Some(Value::Single(first))) => Some(Value::List(vec![first, o])),
                (OptionKind::List, Some(Value::List(mut items))) => {
                    items.push(o);
                    Some(Value::List(items))
                }
            };
        }
        value
    }

    /// The single value of `name`; `None` if unset or if it is a list.
    pub fn option(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Single(o) => Some(&o.value),
            Value::List(_) => None,
        }
    }

    /// Every value of `name`, in order; empty if unset. A single `option`
    /// gives a one-item list, as libuci's shell `config_list_foreach` does.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.get(name).map(|v| v.values()).unwrap_or_default()
    }

    /// Every line that mentions `name`, including ones a later line
    /// overrode: for checkers that warn about repeats.
    pub fn entries<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a UciOption> + 'a {
        self.options.iter().filter(move |o| o.name == name)
    }

    /// Make `name` a single value: drops its earlier lines and puts one
    /// `option` where the first of them was (at the end if none).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let at = self.options.iter().position(|o| o.name == name);
        self.remove(&name);
        let option = UciOption {
            kind: OptionKind::Option,
            name,
            value: value.into(),
            line: 0,
        };
        let at = at.unwrap_or(self.options.len()).min(self.options.len());
        self.options.insert(at, option);
    }

    /// Append one `list` value.
    pub fn add_list(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.options.push(UciOption {
            kind: OptionKind::List,
            name: name.into(),
            value: value.into(),
            line: 0,
        });
    }

    /// Drop every line for `name`.
    pub fn remove(&mut self, name: &str) {
        self.options.retain(|o| o.name != name);
    }
}

impl PartialEq for Section {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.options == other.options
    }
}

impl Eq for Section {}

impl PartialEq for UciOption {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for UciOption {}
