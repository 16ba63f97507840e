use super::*;
use crate::ErrorKind;

#[test]
fn defaults_follow_the_seeds() {
    let c = Config::default();
    assert_eq!(c.pool.max_connections, 100);
    assert_eq!(c.pool.max_connections_per_host, 50);
    assert_eq!(c.pool.max_idle_per_host, 10);
    assert_eq!(c.pool.idle_timeout_ms, 90_000);
    assert_eq!(c.timeouts.connect_ms, 10_000);
    assert_eq!(c.timeouts.tls_handshake_ms, 10_000);
    assert_eq!(c.tcp.keepalive_ms, 30_000);
    assert_eq!(c.timeouts.total_ms, 30_000);
    assert_eq!(c.redirect.max, 10);
    assert_eq!(c.dns.cache_size, 1000);
    c.validate().unwrap();
}

#[test]
fn unknown_field_is_named() {
    let e = Config::from_json(r#"{"pool": {"max_idle": 3}}"#).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    let msg = e.to_string();
    assert!(msg.contains("pool"), "{msg}");
    assert!(msg.contains("max_idle"), "{msg}");
}

#[test]
fn wrong_type_is_named() {
    let e = Config::from_json(r#"{"timeouts": {"connect_ms": "soon"}}"#).unwrap_err();
    assert!(e.to_string().contains("timeouts.connect_ms"), "{e}");
}

#[test]
fn negative_duration_is_named() {
    let e = Config::from_json(r#"{"pool": {"idle_timeout_ms": -5}}"#).unwrap_err();
    assert!(e.to_string().contains("pool.idle_timeout_ms"), "{e}");
    assert!(e.to_string().contains("-5"), "{e}");
}

#[test]
fn relations_are_validated() {
    let e = Config::from_json(r#"{"pool": {"max_connections": 4, "max_connections_per_host": 8}}"#)
        .unwrap_err();
    assert!(
        e.to_string().contains("pool.max_connections_per_host"),
        "{e}"
    );
    let e = Config::from_json(r#"{"dns": {"nameservers": ["nope"]}}"#).unwrap_err();
    assert!(e.to_string().contains("dns.nameservers[0]"), "{e}");
}

#[test]
fn origin_bounds_are_validated() {
    for (json, field) in [
        (r#"{"pool": {"max_origins": 0}}"#, "pool.max_origins"),
        (r#"{"pool": {"max_origins": 1000001}}"#, "pool.max_origins"),
        (
            r#"{"pool": {"origin_idle_timeout_ms": 18446744073709551615}}"#,
            "pool.origin_idle_timeout_ms",
        ),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn round_trips_through_json() {
    let c = Config::default();
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(Config::from_json(&json).unwrap(), c);
}

/// Sets the field at dotted `path` of a config's JSON.
fn set(v: &mut serde_json::Value, path: &str, n: u64) {
    let mut at = v;
    for key in path.split('.') {
        at = &mut at[key];
    }
    assert!(at.is_u64(), "{path} is not a number");
    *at = n.into();
}

/// Every numeric field at its maximum, with the policies that read them enabled.
fn all_at_max() -> serde_json::Value {
    let mut v = serde_json::to_value(Config::default()).unwrap();
    for (field, max) in Config::upper_bounds() {
        set(&mut v, field, max);
    }
    for section in ["breaker", "rate_limit", "concurrency"] {
        v[section]["enabled"] = true.into();
    }
    v["retry"]["hedge"]["enabled"] = true.into();
    v
}

/// Dotted names of every integer leaf of a config's JSON.
fn integer_fields(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                integer_fields(v, &name, out);
            }
        }
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => out.push(prefix.to_owned()),
        _ => {}
    }
}

#[test]
fn every_numeric_field_has_an_upper_bound() {
    let mut fields = Vec::new();
    integer_fields(
        &serde_json::to_value(Config::default()).unwrap(),
        "",
        &mut fields,
    );
    let bounded: Vec<&str> = Config::upper_bounds().map(|(f, _)| f).collect();
    for f in &fields {
        assert!(
            bounded.contains(&f.as_str()),
            "{f} has no upper bound in upper_bounds()"
        );
    }
    assert_eq!(
        bounded.len(),
        fields.len(),
        "upper_bounds() names a field twice"
    );
}

#[test]
fn each_field_beyond_its_bound_is_refused_by_name() {
    let base = all_at_max();
    Config::from_value(base.clone()).unwrap();
    for (field, max) in Config::upper_bounds() {
        for mut v in [
            base.clone(),
            serde_json::to_value(Config::default()).unwrap(),
        ] {
            set(&mut v, field, max + 1);
            let e = Config::from_value(v).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{field}");
            let want = format!("{field}: must be at most {max}");
            assert!(e.to_string().contains(&want), "{field}: {e}");
        }
    }
}

#[test]
fn a_client_builds_with_every_field_at_its_maximum() {
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
    let cfg = Config::from_value(all_at_max()).unwrap();
    let before = rss_kib();
    let client = crate::Client::from_config(cfg).unwrap();
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "building the client took {grown} KiB");
    drop(client);
}

#[test]
fn rate_limit_bursts_refill_within_a_year() {
    let e =
        Config::from_json(r#"{"rate_limit": {"requests": 1, "per_ms": 31536000000, "burst": 2}}"#)
            .unwrap_err();
    assert!(e.to_string().contains("rate_limit.burst"), "{e}");
}

#[test]
fn redis_urls_may_use_tls() {
    for url in ["redis://127.0.0.1:6379", "rediss://localhost:6380/0"] {
        let json =
            format!(r#"{{"rate_limit": {{"backend": "redis", "redis": {{"url": "{url}"}}}}}}"#);
        Config::from_json(&json).unwrap();
    }
    let e =
        Config::from_json(r#"{"rate_limit": {"backend": "redis", "redis": {"url": "http://x"}}}"#)
            .unwrap_err();
    assert!(e.to_string().contains("rate_limit.redis.url"), "{e}");
}

#[test]
fn committed_schema_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.schema.json");
    let want = serde_json::to_string_pretty(&Config::json_schema()).unwrap() + "\n";
    if std::env::var_os("WIRECORE_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "core/config.schema.json is stale: run `make schema`"
    );
}
