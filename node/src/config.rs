//! JS naming ↔ core naming: camelCase config keys become the core's snake_case, and stats keys
//! go the other way. The only place in the addon that renames anything.
//!
//! Keys of maps that hold data (header names, origins, error codes) are never renamed.

use serde_json::{Map, Value};

/// Config fields whose keys are data, not field names.
const CONFIG_DATA_MAPS: &[&str] = &["default_headers", "headers"];
/// Config fields whose keys are data (service names) and whose values are records again.
const CONFIG_RECORD_MAPS: &[&str] = &["services"];
/// Stats fields whose keys are data.
const STATS_DATA_MAPS: &[&str] = &[
    "origins",
    "errors_by_code",
    "responses_by_status_class",
    "retries",
    "services",
    "endpoints",
];

/// `maxIdlePerHost` → `max_idle_per_host`; snake_case input is returned unchanged.
pub(crate) fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `max_idle_per_host` → `maxIdlePerHost`.
pub(crate) fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A renamed config and, for error messages, each renamed path with the name the caller used.
pub(crate) struct Renamed {
    pub(crate) value: Value,
    renames: Vec<(String, String)>,
}

impl Renamed {
    /// Rewrites a core message so it names the fields as the caller spelled them.
    pub(crate) fn explain(&self, message: &str) -> String {
        let mut msg = message.to_owned();
        // Longest first, so `pool.max_idle_per_host` wins over `pool`.
        let mut renames: Vec<&(String, String)> = self.renames.iter().collect();
        renames.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        for (snake, js) in renames {
            msg = msg.replace(&format!("{snake}:"), &format!("{js}:"));
            let leaf_s = snake.rsplit('.').next().unwrap_or(snake);
            let leaf_j = js.rsplit('.').next().unwrap_or(js);
            msg = msg.replace(&format!("`{leaf_s}`"), &format!("`{leaf_j}`"));
        }
        camel_quoted(&msg)
    }
}

/// Spells every backquoted snake_case name (serde's "expected one of `max_idle_per_host`, ...")
/// the way JS callers write it.
fn camel_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('`');
        let quoted = i % 2 == 0;
        let ident = part
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if quoted && ident && part.contains('_') {
            out.push_str(&camel(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Renames every field key of a JS config object to the core's snake_case.
pub(crate) fn config_from_js(value: Value) -> Renamed {
    let mut renames = Vec::new();
    let value = rename(value, "", "", &mut renames, true);
    Renamed { value, renames }
}

fn rename(
    value: Value,
    snake_path: &str,
    js_path: &str,
    renames: &mut Vec<(String, String)>,
    rename_keys: bool,
) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let s = if rename_keys { snake(&k) } else { k.clone() };
        let sp = join(snake_path, &s);
        let jp = join(js_path, &k);
        if sp != jp {
            renames.push((sp.clone(), jp.clone()));
        }
        let inner_rename = rename_keys && !CONFIG_DATA_MAPS.contains(&s.as_str());
        let v = match v {
            Value::Object(m) if rename_keys && CONFIG_RECORD_MAPS.contains(&s.as_str()) => {
                Value::Object(
                    m.into_iter()
                        .map(|(name, rec)| {
                            let (sp, jp) = (join(&sp, &name), join(&jp, &name));
                            (name, rename(rec, &sp, &jp, renames, true))
                        })
                        .collect(),
                )
            }
            v => rename(v, &sp, &jp, renames, inner_rename),
        };
        out.insert(s, v);
    }
    Value::Object(out)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Renames every field key of a core stats (or diagnostics) value to camelCase.
pub(crate) fn stats_to_js(value: Value) -> Value {
    camelize(value, true)
}

fn camelize(value: Value, rename_keys: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let inner = rename_keys && !STATS_DATA_MAPS.contains(&k.as_str());
                    // The children of a data map are records again: rename their fields.
                    let v = if rename_keys && !inner {
                        match v {
                            Value::Object(m) => Value::Object(
                                m.into_iter()
                                    .map(|(dk, dv)| (dk, camelize(dv, true)))
                                    .collect(),
                            ),
                            other => other,
                        }
                    } else {
                        camelize(v, inner)
                    };
                    (if rename_keys { camel(&k) } else { k }, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| camelize(v, rename_keys))
                .collect(),
        ),
        other => other,
    }
}
