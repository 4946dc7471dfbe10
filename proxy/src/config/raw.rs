//! Walking the untyped configuration tree (`config::Value`) into typed values while
//! collecting every error instead of stopping at the first one.
//!
//! serde's `deny_unknown_fields` aborts on the first problem; an operator fixing a config
//! wants the whole list. So the layered tree (TOML file + `STRAIT_*` environment) is
//! walked by hand here with the same semantics: every table declares its keys, anything
//! else is an "unknown key" error (with a spelling suggestion), and type mismatches name
//! the key path and what was found.

use config::{Map, Value, ValueKind};

use super::ConfigError;

/// The origin string the `config` crate gives values read from environment variables.
pub(crate) const ENV_ORIGIN: &str = "the environment";

/// Collects errors during a walk.
#[derive(Debug, Default)]
pub(crate) struct Errors(pub(crate) Vec<ConfigError>);

impl Errors {
    /// Records that `key` is wrong because of `reason`.
    pub(crate) fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigError {
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// Like [`Errors::push`], noting the environment variable when the value came from one.
    pub(crate) fn push_for(&mut self, value: &Value, key: &str, reason: impl Into<String>) {
        let mut reason = reason.into();
        if from_env(value) {
            reason.push_str(&format!(
                " (from environment variable {})",
                env_var_name(key)
            ));
        }
        self.push(key, reason);
    }
}

/// Whether a value was set by an environment variable rather than the file.
fn from_env(value: &Value) -> bool {
    value.origin() == Some(ENV_ORIGIN)
}

/// The `STRAIT_…` variable that sets `key` (`port[0].mtu`: `STRAIT_PORT__0__MTU`).
pub(crate) fn env_var_name(key: &str) -> String {
    format!("STRAIT_{}", key.replace('[', "__").replace(']', "").replace('.', "__").to_uppercase())
}

/// Joins a parent path and a key: `("dpdk", "lcores")` -> `dpdk.lcores`.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// What kind of value was found, for error messages.
pub(crate) fn describe(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nothing".to_string(),
        ValueKind::Boolean(b) => format!("a boolean ({b})"),
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            format!("an integer ({value})")
        }
        ValueKind::Float(f) => format!("a float ({f})"),
        ValueKind::String(s) => format!("a string ({s:?})"),
        ValueKind::Table(_) => "a table".to_string(),
        ValueKind::Array(_) => "an array".to_string(),
    }
}

/// A table being walked: its key path and its entries.
pub(crate) struct Table<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Table<'a> {
    /// Views `value` as a table, or records an error and returns `None`.
    pub(crate) fn new(value: &'a Value, path: &str, errs: &mut Errors) -> Option<Table<'a>> {
        match &value.kind {
            ValueKind::Table(map) => Some(Table {
                path: path.to_string(),
                map,
            }),
            _ => {
                errs.push_for(
                    value,
                    path,
                    format!("expected a table, found {}", describe(value)),
                );
                None
            }
        }
    }

    /// The key path of `key` inside this table.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Rejects every key not in `allowed`, suggesting the closest allowed one.
    pub(crate) fn deny_unknown(&self, allowed: &[&str], errs: &mut Errors) {
        for (key, value) in self.map {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let reason = match suggest(key, allowed) {
                Some(s) => format!("unknown key (did you mean `{s}`?)"),
                None => format!("unknown key (expected one of: {})", allowed.join(", ")),
            };
            errs.push_for(value, &self.path_of(key), reason);
        }
    }

    /// The value under `key`, if present and not empty.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .get(key)
            .filter(|v| !matches!(v.kind, ValueKind::Nil))
    }

    /// Records that the value under `key` is wrong (naming its environment variable if it
    /// came from one) and yields `None`.
    pub(crate) fn fail<T>(
        &self,
        errs: &mut Errors,
        key: &str,
        reason: impl Into<String>,
    ) -> Option<T> {
        let path = self.path_of(key);
        match self.map.get(key) {
            Some(v) => errs.push_for(v, &path, reason),
            None => errs.push(path, reason),
        }
        None
    }

    /// The string under `key`; `None` (and an error if present but mistyped) otherwise.
    pub(crate) fn string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        self.get(key)
            .and_then(|v| as_string(v, &self.path_of(key), errs))
    }

    /// A required string: records "missing" when absent.
    pub(crate) fn required_string(&self, key: &str, errs: &mut Errors) -> Option<String> {
        if self.get(key).is_none() {
            errs.push(self.path_of(key), "required key is missing");
            return None;
        }
        self.string(key, errs)
    }

    /// The boolean under `key`, or `default` when absent; `None` on a type error.
    pub(crate) fn bool_or(&self, key: &str, default: bool, errs: &mut Errors) -> Option<bool> {
        match self.get(key) {
            None => Some(default),
            Some(v) => match &v.kind {
                ValueKind::Boolean(b) => Some(*b),
                _ => {
                    errs.push_for(
                        v,
                        &self.path_of(key),
                        format!("expected true or false, found {}", describe(v)),
                    );
                    None
                }
            },
        }
    }

    /// The integer under `key` within `min..=max`, or `default` when absent.
    pub(crate) fn uint_or(
        &self,
        key: &str,
        default: u32,
        min: u32,
        max: u32,
        errs: &mut Errors,
    ) -> Option<u32> {
        match self.get(key) {
            None => Some(default),
            Some(v) => as_uint(v, &self.path_of(key), min, max, errs),
        }
    }

    /// The array under `key`, or an empty one when absent. A single scalar set from the
    /// environment (`STRAIT_DPDK__LCORES=1`) counts as a one-element array.
    pub(crate) fn array(&self, key: &str, errs: &mut Errors) -> Option<Vec<Value>> {
        match self.get(key) {
            None => Some(Vec::new()),
            Some(v) => match &v.kind {
                ValueKind::Array(items) => Some(items.clone()),
                ValueKind::Table(_) => {
                    errs.push_for(
                        v,
                        &self.path_of(key),
                        format!("expected an array, found {}", describe(v)),
                    );
                    None
                }
                _ if from_env(v) => Some(vec![v.clone()]),
                _ => {
                    errs.push_for(
                        v,
                        &self.path_of(key),
                        format!("expected an array, found {}", describe(v)),
                    );
                    None
                }
            },
        }
    }
}

/// Views a value as a string. Scalars set from the environment are accepted as their
/// text (the environment source turns `STRAIT_PORT__NAME=1` into an integer).
pub(crate) fn as_string(value: &Value, path: &str, errs: &mut Errors) -> Option<String> {
    match &value.kind {
        ValueKind::String(s) => Some(s.clone()),
        ValueKind::Boolean(_)
        | ValueKind::I64(_)
        | ValueKind::I128(_)
        | ValueKind::U64(_)
        | ValueKind::U128(_)
        | ValueKind::Float(_)
            if from_env(value) =>
        {
            Some(value.to_string())
        }
        _ => {
            errs.push_for(
                value,
                path,
                format!("expected a string, found {}", describe(value)),
            );
            None
        }
    }
}

/// Views a value as an integer in `min..=max`. Strings set from the environment (list
/// elements such as `STRAIT_DPDK__LCORES=0,1`) are parsed.
pub(crate) fn as_uint(
    value: &Value,
    path: &str,
    min: u32,
    max: u32,
    errs: &mut Errors,
) -> Option<u32> {
    let n: Option<i128> = match &value.kind {
        ValueKind::I64(n) => Some(i128::from(*n)),
        ValueKind::U64(n) => Some(i128::from(*n)),
        ValueKind::I128(n) => Some(*n),
        ValueKind::U128(n) => Some(i128::try_from(*n).unwrap_or(i128::MAX)),
        ValueKind::String(s) if from_env(value) => s.trim().parse::<i128>().ok(),
        _ => None,
    };
    let Some(n) = n else {
        errs.push_for(
            value,
            path,
            format!("expected an integer, found {}", describe(value)),
        );
        return None;
    };
    if n < i128::from(min) || n > i128::from(max) {
        errs.push_for(
            value,
            path,
            format!("{n} is out of range (must be {min}..={max})"),
        );
        return None;
    }
    u32::try_from(n).ok()
}

/// The allowed key closest to `key` by edit distance, when close enough to be a typo.
pub(crate) fn suggest<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    let key = key.to_lowercase();
    allowed
        .iter()
        .map(|cand| (osa_distance(&key, cand), *cand))
        .filter(|(d, cand)| *d <= (cand.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, cand)| cand)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), so that
/// `lcroes` is one edit away from `lcores`.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = best;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(osa_distance("lcroes", "lcores"), 1);
        assert_eq!(osa_distance("", "abc"), 3);
        assert_eq!(osa_distance("mtu", "mtu"), 0);
    }

    #[test]
    fn suggests_only_close_keys() {
        assert_eq!(suggest("lcroes", &["lcores", "mbufs"]), Some("lcores"));
        assert_eq!(suggest("ports", &["log", "dpdk", "port"]), Some("port"));
        assert_eq!(suggest("frobnicate", &["log", "dpdk", "port"]), None);
    }

    #[test]
    fn env_var_names_follow_the_separator_convention() {
        assert_eq!(env_var_name("log.level"), "STRAIT_LOG__LEVEL");
        assert_eq!(env_var_name("port[0].mtu"), "STRAIT_PORT__0__MTU");
        assert_eq!(env_var_name("pool[1].servers[0].weight"), "STRAIT_POOL__1__SERVERS__0__WEIGHT");
    }

    #[test]
    fn integers_out_of_range_name_the_bounds() {
        let mut errs = Errors::default();
        let v = Value::new(None, ValueKind::I64(-1));
        assert_eq!(as_uint(&v, "x.y", 0, 10, &mut errs), None);
        assert_eq!(errs.0[0].key, "x.y");
        assert!(
            errs.0[0].reason.contains("out of range"),
            "{}",
            errs.0[0].reason
        );
    }

    #[test]
    fn strings_are_not_integers_unless_from_the_environment() {
        let mut errs = Errors::default();
        let file = Value::new(Some(&"f.toml".to_string()), ValueKind::String("7".into()));
        assert_eq!(as_uint(&file, "k", 0, 10, &mut errs), None);
        assert!(errs.0[0]
            .reason
            .contains("expected an integer, found a string"));
        let env = Value::new(Some(&ENV_ORIGIN.to_string()), ValueKind::String("7".into()));
        assert_eq!(as_uint(&env, "k", 0, 10, &mut errs), Some(7));
    }
}
