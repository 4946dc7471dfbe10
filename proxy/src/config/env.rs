//! `STRAIT_*` environment overrides.
//!
//! `STRAIT_` + the key path with `__` between levels: `STRAIT_LOG__LEVEL=debug`,
//! `STRAIT_DPDK__LCORES=0,1`. Only names with a `__` are overrides; other `STRAIT_*`
//! variables (`STRAIT_HUGEPAGES`, read by the hugepage unit) are left alone.
//!
//! An entry of an array of tables (`[[port]]`, `[[listener]]`, `[[pool]]`, `[[app]]`) is
//! named by its index in the file, counted from 0, as the error messages name it:
//! `STRAIT_PORT__0__MTU=1400` sets `port[0].mtu`, `STRAIT_POOL__1__SERVERS__0__WEIGHT=5`
//! sets `pool[1].servers[0].weight`. An override changes an entry the file has, it does
//! not add one: an index past the end, or a missing index (`STRAIT_PORT__MTU`), is an
//! error naming the variable. The value is read as the other overrides are: `true` /
//! `false`, an integer, a number, else text; then validated like the file's.

use config::{Value, ValueKind};

use super::raw::ENV_ORIGIN;
use super::ConfigError;

/// Sections that are arrays of tables: their entries are named by index.
const ARRAY_SECTIONS: &[&str] = &["port", "listener", "pool", "app"];

/// One variable that sets a key inside an array entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryOverride {
    /// The variable's name.
    var: String,
    /// The key path, lower case, one element per `__`-separated part.
    path: Vec<String>,
    /// The value as given.
    value: String,
}

/// The environment's overrides, split by how they are applied.
#[derive(Debug, Default)]
pub struct Overrides {
    /// Keys outside arrays of tables: through the `config` crate's environment source.
    pub plain: Vec<(String, String)>,
    /// Keys inside array entries: applied to the tree by [`apply_entries`].
    pub entries: Vec<EntryOverride>,
}

/// Sorts `vars` into overrides; other variables are ignored. `Err` for names that cannot
/// be a key path (an empty part).
pub fn env_overrides(vars: Vec<(String, String)>) -> Result<Overrides, Vec<ConfigError>> {
    let mut out = Overrides::default();
    let mut errs = Vec::new();
    for (name, value) in vars {
        let Some(path) = name.strip_prefix("STRAIT_") else { continue };
        if !path.contains("__") {
            continue;
        }
        let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            errs.push(ConfigError {
                key: parts.join("."),
                reason: format!("{name}: an empty key between `__` separators"),
            });
            continue;
        }
        if ARRAY_SECTIONS.contains(&parts[0].as_str()) {
            out.entries.push(EntryOverride { var: name, path: parts, value });
        } else {
            out.plain.push((name, value));
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Applies the overrides of array entries to the configuration tree (the file with the
/// plain overrides applied). Every problem is reported, each naming its variable.
pub fn apply_entries(tree: &mut Value, entries: &[EntryOverride]) -> Result<(), Vec<ConfigError>> {
    let errs: Vec<ConfigError> = entries.iter().filter_map(|e| apply(tree, e).err()).collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// The value of a variable as the `config` crate's environment source parses it.
fn parse(value: &str) -> ValueKind {
    if let Ok(b) = value.to_ascii_lowercase().parse::<bool>() {
        ValueKind::Boolean(b)
    } else if let Ok(i) = value.parse::<i64>() {
        ValueKind::I64(i)
    } else if let Ok(f) = value.parse::<f64>() {
        ValueKind::Float(f)
    } else {
        ValueKind::String(value.to_string())
    }
}

fn apply(tree: &mut Value, e: &EntryOverride) -> Result<(), ConfigError> {
    let origin = ENV_ORIGIN.to_string();
    let fail = |key: &str, reason: String| ConfigError { key: key.to_string(), reason: format!("{}: {reason}", e.var) };
    let section = &e.path[0];
    let mut key = section.clone();
    let ValueKind::Table(root) = &mut tree.kind else {
        return Err(fail(&key, "the configuration is not a table".into()));
    };
    let Some(mut node) = root.get_mut(section) else {
        return Err(fail(&key, format!("the file has no [[{section}]] entry to override")));
    };
    let last = e.path.len() - 1;
    for (i, part) in e.path.iter().enumerate().skip(1) {
        node = match &mut node.kind {
            ValueKind::Array(list) => {
                let len = list.len();
                let Ok(index) = part.parse::<usize>() else {
                    let upper = |p: &[String]| p.join("__").to_ascii_uppercase();
                    let example = format!("STRAIT_{}__0__{}", upper(&e.path[..i]), upper(&e.path[i..]));
                    return Err(fail(
                        &key,
                        format!("{key} is a list: name its entry by index, counted from 0 (e.g. {example})"),
                    ));
                };
                if i == last {
                    return Err(fail(&format!("{key}[{index}]"), "name a key inside the entry".into()));
                }
                let Some(entry) = list.get_mut(index) else {
                    return Err(fail(&format!("{key}[{index}]"), format!("no entry {index}: the file has {len} in {key}")));
                };
                key = format!("{key}[{index}]");
                entry
            }
            ValueKind::Table(table) => {
                key = format!("{key}.{part}");
                if i == last {
                    table.insert(part.clone(), Value::new(Some(&origin), parse(&e.value)));
                    return Ok(());
                }
                table.entry(part.clone()).or_insert_with(|| Value::new(Some(&origin), ValueKind::Table(Default::default())))
            }
            _ => return Err(fail(&key, format!("{key} is a value, not a table"))),
        };
    }
    Err(fail(&key, "name a key inside the entry".into()))
}
