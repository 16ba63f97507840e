use std::collections::HashMap;

use super::*;
use crate::config::{EndpointConfig, ServiceConfig, Strategy};

fn service(strategy: Strategy, weights: &[u32]) -> Service {
    let sc = ServiceConfig {
        endpoints: weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| EndpointConfig {
                url: format!("http://10.0.0.{}:80", i + 1),
                weight,
            })
            .collect(),
        strategy,
        ..ServiceConfig::default()
    };
    let policies = Policies::new(&Config::default()).unwrap();
    Service::new("svc", &sc, &policies).unwrap()
}

fn picks(s: &Service, n: usize) -> Vec<usize> {
    let eps = s.all();
    (0..n)
        .map(|_| {
            let e = s.pick(None, &[]).unwrap();
            eps.iter().position(|x| x.id == e.id).unwrap()
        })
        .collect()
}

#[test]
fn smooth_weighted_round_robin_interleaves_like_nginx() {
    let s = service(Strategy::WeightedRoundRobin, &[5, 1, 1]);
    // nginx's documented sequence for weights 5, 1, 1: a a b a c a a.
    assert_eq!(picks(&s, 7), [0, 0, 1, 0, 2, 0, 0]);
    assert_eq!(picks(&s, 7), [0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn the_precomputed_weighted_cycle_is_the_smooth_sequence() {
    let weights = [3, 1, 2, 5, 1];
    let s = service(Strategy::WeightedRoundRobin, &weights);
    let eps = s.all();
    let current = std::sync::Mutex::new(vec![0; eps.len()]);
    let want: Vec<usize> = (0..36)
        .map(|_| strategy::smooth_weighted(&eps, &current, |_| true).unwrap())
        .collect();
    assert_eq!(picks(&s, 36), want);
    // With one endpoint tried, the others still share by weight (the scan decides).
    let skip = [eps[3].id];
    let mut n = [0; 5];
    for _ in 0..70 {
        let e = s.pick(None, &skip).unwrap();
        n[eps.iter().position(|x| x.id == e.id).unwrap()] += 1;
    }
    assert_eq!(n[3], 0, "{n:?}");
    assert_eq!(n.iter().sum::<u32>(), 70);
    assert!(n[0] > n[1] && n[2] > n[1], "{n:?}");
}

#[test]
fn round_robin_visits_each_in_turn() {
    let s = service(Strategy::RoundRobin, &[1, 1, 1]);
    let p = picks(&s, 9);
    for w in p.windows(2) {
        assert_eq!((w[0] + 1) % 3, w[1], "{p:?}");
    }
}

#[test]
fn a_retry_avoids_the_endpoints_already_tried() {
    for strategy in [
        Strategy::RoundRobin,
        Strategy::WeightedRoundRobin,
        Strategy::LeastOutstanding,
        Strategy::P2cPeakEwma,
        Strategy::ConsistentHash,
    ] {
        let s = service(strategy, &[1, 1, 1]);
        let ids: Vec<u64> = s.all().iter().map(|e| e.id).collect();
        for _ in 0..50 {
            let e = s.pick(Some(42), &ids[..2]).unwrap();
            assert_eq!(e.id, ids[2], "{strategy:?}");
        }
        // With all tried, any may be picked again.
        assert!(s.pick(Some(42), &ids).is_some());
    }
}

#[test]
fn least_outstanding_takes_the_idlest() {
    let s = service(Strategy::LeastOutstanding, &[1, 1, 1]);
    let eps = s.all();
    let _a = InFlight::start(eps[0].clone(), 0);
    let _b = InFlight::start(eps[2].clone(), 0);
    for _ in 0..10 {
        assert_eq!(s.pick(None, &[]).unwrap().id, eps[1].id);
    }
}

#[test]
fn p2c_avoids_a_slow_endpoint() {
    let s = service(Strategy::P2cPeakEwma, &[1, 1, 1]);
    let eps = s.all();
    let now = s.now_ns();
    for (i, e) in eps.iter().enumerate() {
        let f = InFlight::start(e.clone(), now);
        let rtt = if i == 0 { 50_000_000 } else { 1_000_000 };
        f.finish(Outcome::Success, now + rtt, s.decay_ns);
    }
    let p = picks(&s, 300);
    assert!(!p.contains(&0), "the slow endpoint was picked");
}

#[test]
fn a_transport_failure_makes_an_endpoint_expensive() {
    let s = service(Strategy::P2cPeakEwma, &[1, 1]);
    let eps = s.all();
    let now = s.now_ns();
    InFlight::start(eps[0].clone(), now).finish(Outcome::Transport, now + 1000, s.decay_ns);
    InFlight::start(eps[1].clone(), now).finish(Outcome::Success, now + 5_000_000, s.decay_ns);
    assert!(eps[0].cost(now, s.decay_ns) > eps[1].cost(now, s.decay_ns));
    assert_eq!(
        eps[0].failures.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn consistent_hash_moves_only_the_keys_of_a_leaving_endpoint() {
    let s3 = service(Strategy::ConsistentHash, &[1, 1, 1]);
    let urls3: Vec<Arc<str>> = s3.all().iter().map(|e| e.url.clone()).collect();
    // The same endpoints without the second.
    let sc = ServiceConfig {
        endpoints: vec![
            EndpointConfig {
                url: urls3[0].to_string(),
                weight: 1,
            },
            EndpointConfig {
                url: urls3[2].to_string(),
                weight: 1,
            },
        ],
        strategy: Strategy::ConsistentHash,
        ..ServiceConfig::default()
    };
    let s2 = Service::new("svc", &sc, &Policies::new(&Config::default()).unwrap()).unwrap();
    let n = 3000;
    let (mut moved, mut per) = (0, HashMap::<Arc<str>, usize>::new());
    for k in 0..n {
        let key = ring::hash(format!("user-{k}").as_bytes());
        let a = s3.pick(Some(key), &[]).unwrap().url.clone();
        let b = s2.pick(Some(key), &[]).unwrap().url.clone();
        *per.entry(a.clone()).or_default() += 1;
        if a != b {
            assert_eq!(a, urls3[1], "a key of a staying endpoint moved");
            moved += 1;
        }
        // Sticky: the same key, the same endpoint.
        assert_eq!(s3.pick(Some(key), &[]).unwrap().url, a);
    }
    assert!(moved <= n / 3 + n / 20, "{moved} of {n} keys moved");
    for (u, c) in &per {
        assert!((700..=1300).contains(c), "{u}: {c} of {n} keys");
    }
}

#[test]
fn consistent_hash_bounds_the_load_of_a_hot_key() {
    let s = service(Strategy::ConsistentHash, &[1, 1, 1]);
    let mut held = Vec::new();
    for _ in 0..30 {
        let e = s.pick(Some(7), &[]).unwrap();
        held.push(InFlight::start(e, 0));
    }
    for e in s.all() {
        let load = e.outstanding.load(std::sync::atomic::Ordering::Relaxed);
        // ≤ 1.25 × the average of 10, rounded up.
        assert!(load <= 13, "{}: {load} in flight", e.url);
    }
}

#[test]
fn a_service_url_is_rewritten_to_the_endpoint() {
    let e = Endpoint::new("http://10.0.0.1:8080/api/", 1, 0.0).unwrap();
    let u: Uri = "http://payments/charge?id=1".parse().unwrap();
    assert_eq!(
        e.uri_for(&u).unwrap().to_string(),
        "http://10.0.0.1:8080/api/charge?id=1"
    );
    let e = Endpoint::new("https://pay.example", 1, 0.0).unwrap();
    assert_eq!(
        e.uri_for(&"http://payments".parse().unwrap())
            .unwrap()
            .to_string(),
        "https://pay.example/"
    );
}

#[test]
fn only_portless_urls_naming_a_service_are_balanced() {
    let mut cfg = Config::default();
    cfg.services
        .insert("payments".into(), service_config("http://127.0.0.1:1"));
    let b = Balancer::new(&cfg, &Policies::new(&cfg).unwrap()).unwrap();
    for (url, balanced) in [
        ("http://payments/x", true),
        ("https://PAYMENTS/x", true),
        ("http://payments:80/x", false),
        ("http://user@payments/x", false),
        ("http://payments.example/x", false),
        ("http://127.0.0.1:1/x", false),
    ] {
        let u: Uri = url.parse().unwrap();
        assert_eq!(b.service_of(&u).is_some(), balanced, "{url}");
    }
}

fn service_config(url: &str) -> ServiceConfig {
    ServiceConfig {
        endpoints: vec![EndpointConfig {
            url: url.into(),
            weight: 1,
        }],
        ..ServiceConfig::default()
    }
}

#[test]
fn bad_services_are_refused_by_name() {
    for (json, field) in [
        (
            r#"{"services": {"Pay": {"endpoints": [{"url": "http://a"}]}}}"#,
            "services.Pay",
        ),
        (r#"{"services": {"pay": {}}}"#, "services.pay.endpoints"),
        (
            r#"{"services": {"pay": {"endpoints": [{"url": "ftp://a"}]}}}"#,
            "services.pay.endpoints[0].url",
        ),
        (
            r#"{"services": {"pay": {"endpoints": [{"url": "http://a?x=1"}]}}}"#,
            "services.pay.endpoints[0].url",
        ),
        (
            r#"{"services": {"pay": {"endpoints": [{"url": "http://a", "weight": 0}]}}}"#,
            "services.pay.endpoints[0].weight",
        ),
        (
            r#"{"services": {"pay": {"endpoints": [{"url": "http://a"}], "hash_load_factor_percent": 99}}}"#,
            "services.pay.hash_load_factor_percent",
        ),
        (
            r#"{"services": {"pay": {"endpoints": [{"url": "http://a"}], "strategy": "random"}}}"#,
            "services.pay.strategy",
        ),
        (
            r#"{"services": {"pay": {"endpoints": [{"url": "http://a", "port": 1}]}}}"#,
            "services.pay.endpoints[0]",
        ),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig, "{json}");
        assert!(e.to_string().contains(field), "{json}: {e}");
    }
}

#[test]
fn bad_dns_services_are_refused_by_name_before_any_lookup() {
    for (json, field, why) in [
        (
            r#"{"services": {"pay": {"dns": {"name": "", "port": 80}}}}"#,
            "services.pay.dns.name",
            "must not be empty",
        ),
        (
            r#"{"services": {"pay": {"dns": {"name": "pay.internal"}}}}"#,
            "services.pay.dns",
            "missing field `port`",
        ),
        (
            r#"{"services": {"pay": {"dns": {"name": "pay.internal", "port": 0}}}}"#,
            "services.pay.dns.port",
            "between 1 and 65535",
        ),
        (
            r#"{"services": {"pay": {"dns": {"name": "pay internal", "port": 80}}}}"#,
            "services.pay.dns.name",
            "is not a host name",
        ),
        (
            r#"{"services": {"pay": {"dns": {"name": "a", "port": 80}, "endpoints": [{"url": "http://a"}]}}}"#,
            "services.pay.dns",
            "not both",
        ),
        (
            r#"{"services": {"pay": {"dns": {"name": "a", "port": 80, "scheme": "https"}}}}"#,
            "services.pay.dns",
            "unknown field `scheme`",
        ),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig, "{json}");
        let msg = e.to_string();
        assert!(msg.contains(field) && msg.contains(why), "{json}: {e}");
    }
}

#[test]
fn a_dns_answer_keeps_the_endpoints_of_addresses_that_stay() {
    let sc: ServiceConfig =
        serde_json::from_str(r#"{"dns": {"name": "pay.internal", "port": 8080}}"#).unwrap();
    let s = Service::new("pay", &sc, &Policies::new(&Config::default()).unwrap()).unwrap();
    assert_eq!(s.len(), 0);
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    s.dns_answer(Ok(&[ip("10.0.0.2"), ip("10.0.0.1")]));
    let first = s.all();
    let urls: Vec<&str> = first.iter().map(|e| &*e.url).collect();
    assert_eq!(urls, ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]);
    first[1]
        .requests
        .fetch_add(7, std::sync::atomic::Ordering::Relaxed);
    s.dns_answer(Ok(&[ip("10.0.0.2"), ip("::1")]));
    let second = s.all();
    let urls: Vec<&str> = second.iter().map(|e| &*e.url).collect();
    assert_eq!(urls, ["http://10.0.0.2:8080", "http://[::1]:8080"]);
    assert!(
        Arc::ptr_eq(&first[1], &second[0]),
        "10.0.0.2 kept its endpoint"
    );
    assert_eq!(
        second[0]
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        7
    );
    // A failed lookup leaves the endpoints as they were.
    s.dns_answer(Err(&crate::Error::new(crate::ErrorKind::Dns, "servfail")));
    assert_eq!(s.len(), 2);
    assert_eq!(s.dns_error(), None);
}

#[test]
fn at_most_max_ejection_percent_is_ejected_but_always_one() {
    let s = service(Strategy::RoundRobin, &[1, 1, 1]);
    let eps = s.all();
    let cfg = crate::config::OutlierConfig::default();
    assert!(outlier::eject(&cfg, &eps, &eps[0], 0).is_some());
    assert!(
        outlier::eject(&cfg, &eps, &eps[1], 0).is_none(),
        "10% of 3 is one"
    );
    // The second ejection of an endpoint lasts twice as long.
    let later = 31_000_000_000;
    assert!(!eps[0].ejected(later));
    assert!(outlier::eject(&cfg, &eps, &eps[0], later).is_some());
    assert!(eps[0].ejected(later + 59_000_000_000));
    assert!(!eps[0].ejected(later + 60_000_000_000));
}

#[test]
fn health_thresholds_count_runs() {
    let s = service(Strategy::RoundRobin, &[1]);
    let e = &s.all()[0];
    let h = crate::config::HealthCheckConfig::default();
    assert_eq!(outlier::health(&h, e, false), None);
    assert_eq!(outlier::health(&h, e, false), None);
    assert_eq!(outlier::health(&h, e, true), None, "a pass breaks the run");
    for _ in 0..2 {
        assert_eq!(outlier::health(&h, e, false), None);
    }
    assert_eq!(outlier::health(&h, e, false), Some(false));
    assert_eq!(outlier::health(&h, e, true), None);
    assert_eq!(outlier::health(&h, e, true), Some(true));
}

#[test]
fn p2c_compares_costs_as_they_stand_at_any_time() {
    let s = service(Strategy::P2cPeakEwma, &[1, 3]);
    let eps = s.all();
    fastrand::seed(7);
    for _ in 0..2_000 {
        // Latencies recorded at different times, different loads and weights.
        for e in &eps {
            let at = fastrand::u64(1_000..60_000_000_000);
            let rtt = fastrand::u64(1..2_000_000_000) as f64;
            e.rtt.store(rtt.to_bits(), Relaxed);
            e.rtt_at.store(at, Relaxed);
            e.outstanding.store(fastrand::u64(0..50), Relaxed);
        }
        let now = 60_000_000_000 + fastrand::u64(0..30_000_000_000);
        let (a, b) = (&eps[0], &eps[1]);
        let (ca, cb) = (a.cost(now, s.decay_ns), b.cost(now, s.decay_ns));
        // Both decayed to nothing compare as equal; skip exact ties and underflows.
        if ca == 0.0 || cb == 0.0 || (ca / cb - 1.0).abs() < 1e-9 {
            continue;
        }
        assert_eq!(a.cheaper_than(b, s.decay_ns), ca < cb, "{ca} vs {cb}");
        assert_eq!(b.cheaper_than(a, s.decay_ns), cb < ca, "{cb} vs {ca}");
        let (ra, rb) = (a.cost_rank(s.decay_ns), b.cost_rank(s.decay_ns));
        assert_eq!(ra < rb, ca < cb, "rank {ra} vs {rb}, cost {ca} vs {cb}");
    }
    for e in &eps {
        e.outstanding.store(0, Relaxed);
    }
}

#[test]
fn a_pick_reads_the_clock_only_while_an_endpoint_is_out() {
    for strategy in [Strategy::RoundRobin, Strategy::P2cPeakEwma] {
        let mut s = service(strategy, &[1, 1, 1]);
        s.outlier.consecutive_5xx = 1;
        let eps = s.all();
        assert_eq!(s.timed_until.load(Relaxed), 0);
        // Ejected: left out, and picks read the clock until the ejection ends.
        let now = s.now_ns();
        s.finish_at(
            InFlight::start(eps[0].clone(), now),
            Outcome::ServerError(500),
            now,
        );
        assert!(eps[0].ejected(now));
        assert_eq!(
            s.timed_until.load(Relaxed),
            eps[0].ejected_until.load(Relaxed)
        );
        assert!(
            !picks(&s, 60).contains(&0),
            "{strategy:?}: an ejected endpoint picked"
        );
        // Skipped (breaker open) for a moment: left out while it lasts.
        s.skip(&eps[1], std::time::Duration::from_hours(1));
        let p = picks(&s, 60);
        assert!(!p.contains(&0) && !p.contains(&1), "{strategy:?}: {p:?}");
        // When every deadline has passed, the first pick clears the mark.
        eps[0].ejected_until.store(1, Relaxed);
        eps[1].skip_until.store(1, Relaxed);
        s.timed_until.store(1, Relaxed);
        let p = picks(&s, 60);
        assert!(p.contains(&0) && p.contains(&1), "{strategy:?}: {p:?}");
        assert_eq!(s.timed_until.load(Relaxed), 0);
    }
}

#[test]
fn the_rotation_is_the_counter_modulo_the_endpoints() {
    let edges = [0, 1, 2, 3, 7, 8, 9, 1 << 31, u32::MAX - 1, u32::MAX];
    for n in [
        1usize,
        2,
        3,
        5,
        7,
        10,
        64,
        100,
        1000,
        65_521,
        1 << 31,
        u32::MAX as usize,
    ] {
        let r = strategy::Rotation::new(n);
        let xs = edges
            .into_iter()
            .chain((0..2_000).map(|_| fastrand::u32(..)));
        for x in xs {
            let next = AtomicU32::new(x);
            assert_eq!(r.start(&next), Some((x % n as u32) as usize), "{x} % {n}");
            assert_eq!(next.load(Relaxed), x.wrapping_add(1));
        }
    }
    assert_eq!(strategy::Rotation::new(0).start(&AtomicU32::new(5)), None);
}
