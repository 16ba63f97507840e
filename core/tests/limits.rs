//! Limits that protect the process: a huge timeout means no limit (never a panic), every config
//! value within its bounds builds a working client, decompression bombs stop at the ratio limit,
//! and several content codings are all undone or none.

mod support;

use std::time::Duration;

use support::*;
use wirecore::{Client, Config, ErrorKind, RequestBuilder};

/// The longest per-request timeout (one year, the bound of every duration).
const YEAR: Duration = Duration::from_millis(wirecore::config::MAX_DURATION_MS);

type Setter = fn(RequestBuilder, Duration) -> RequestBuilder;

const SETTERS: [(&str, Setter); 4] = [
    ("timeout", RequestBuilder::timeout),
    ("connect_timeout", RequestBuilder::connect_timeout),
    ("read_timeout", RequestBuilder::read_timeout),
    ("pool_timeout", RequestBuilder::pool_timeout),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_year_request_timeouts_work() {
    let srv = server().await;
    let c = client(&srv);
    let all: Setter = |r, d| {
        r.timeout(d)
            .connect_timeout(d)
            .read_timeout(d)
            .pool_timeout(d)
    };
    for (name, set) in SETTERS.into_iter().chain([("all", all)]) {
        // Several body chunks, so the read timer is re-armed after each.
        let url = srv.url("/drip?bytes=40&chunks=4&delay_ms=5");
        let r = set(c.get(&url), YEAR).send().await;
        let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
        let body = r.bytes().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(body.len(), 40, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeouts_over_a_year_are_refused_by_name_before_io() {
    let srv = server().await;
    let c = client(&srv);
    for (name, set) in SETTERS {
        for d in [YEAR + Duration::from_millis(1), Duration::MAX] {
            let e = set(c.get(&srv.url("/")), d).send().await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{name} {d:?}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }
    assert_eq!(srv.counters().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_pool_timeout_waits_for_the_connection() {
    let srv = server().await;
    let c = client_with(&srv, |cfg| {
        cfg.pool.max_connections_per_host = 1;
        cfg.pool.max_connections = 1;
    });
    let slow = srv.url("/delay/200");
    let quick = srv.url("/bytes/10");
    let first = async { c.get(&slow).send().await?.bytes().await };
    let second = async {
        wait_until("the first request holds the connection", || {
            c.stats().pool.active == 1
        })
        .await;
        let r = c.get(&quick).pool_timeout(YEAR).timeout(YEAR).send();
        r.await?.bytes().await
    };
    let (a, b) = tokio::join!(first, second);
    a.unwrap();
    assert_eq!(b.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_with_a_huge_deadline_waits_for_in_flight_requests() {
    let srv = server().await;
    let c = client(&srv);
    let c2 = c.clone();
    let url = srv.url("/delay/200");
    let call = tokio::spawn(async move { c2.get(&url).send().await?.bytes().await });
    wait_until("the request is in flight", || {
        c.stats().requests_in_flight == 1
    })
    .await;
    tokio::time::timeout(Duration::from_secs(30), c.close(Duration::MAX))
        .await
        .expect("close returns once the request is done");
    let body = call.await.unwrap().unwrap();
    assert_eq!(&body[..], b"{\"delay_ms\":200}");
    let e = c.get(&srv.url("/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
}

#[test]
fn huge_config_durations_are_refused_by_name() {
    for field in ["total_ms", "connect_ms", "read_idle_ms", "pool_acquire_ms"] {
        let json = format!(r#"{{"timeouts": {{"{field}": {}}}}}"#, u64::MAX);
        let e = Config::from_json(&json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains(&format!("timeouts.{field}")), "{e}");
        assert!(e.to_string().contains("at most"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_every_field_at_its_maximum_works() {
    let srv = server().await;
    let mut v = serde_json::to_value(config(&srv)).unwrap();
    for (field, max) in Config::upper_bounds() {
        let mut at = &mut v;
        for key in field.split('.') {
            at = &mut at[key];
        }
        *at = max.into();
    }
    // Enabled, so the policies are built with these values too.
    for section in ["breaker", "rate_limit", "concurrency"] {
        v[section]["enabled"] = true.into();
    }
    v["retry"]["hedge"]["enabled"] = true.into();
    let cfg = Config::from_value(v).unwrap();
    let c = Client::from_config(cfg).unwrap();
    for url in [srv.url("/gzip?size=5000"), srv.tls_url("/bytes/1000")] {
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().len() >= 1000);
    }
}

/// Reads a body to its end or first error: (decoded bytes read, the error).
async fn read_all(r: wirecore::Response) -> (u64, Option<wirecore::Error>) {
    let mut body = r.into_body();
    let mut seen = 0u64;
    loop {
        match futures_util::StreamExt::next(&mut body).await {
            Some(Ok(b)) => seen += b.len() as u64,
            Some(Err(e)) => return (seen, Some(e)),
            None => return (seen, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bomb_stops_at_the_decompression_ratio() {
    let srv = server().await;
    // The size limit would allow 1 GiB: only the ratio (default 100) stops these.
    let c = client_with(&srv, |cfg| cfg.limits.max_response_body_bytes = 1 << 30);
    for enc in ["br", "zstd", "gzip"] {
        let r = c
            .get(&srv.url(&format!("/bomb?encoding={enc}&wire=1048576")))
            .send()
            .await
            .unwrap();
        let (seen, err) = read_all(r).await;
        let err = err.unwrap_or_else(|| panic!("{enc}: the bomb decoded whole ({seen} bytes)"));
        assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{enc}: {err}");
        assert!(
            err.to_string().contains("limits.max_decompression_ratio"),
            "{enc}: {err}"
        );
        assert!(seen < 100 << 20, "{enc}: {seen} bytes decoded");
    }
    let s = c.stats();
    assert!(s.bytes_decoded < 3 * (100 << 20), "{}", s.bytes_decoded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ratio_spares_small_bodies_and_can_be_turned_off() {
    let srv = server().await;
    let c = client(&srv);
    // Far above 100x, but under the 1 MiB floor.
    let r = c
        .get(&srv.url("/bomb?encoding=gzip&size=1000000"))
        .send()
        .await
        .unwrap();
    let (seen, err) = read_all(r).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(seen, 1_000_000);
    let c = client_with(&srv, |cfg| {
        cfg.limits.max_decompression_ratio = 0;
        cfg.limits.max_response_body_bytes = 8 << 20;
    });
    let r = c
        .get(&srv.url("/bomb?encoding=zstd&wire=1048576"))
        .send()
        .await
        .unwrap();
    let (seen, err) = read_all(r).await;
    let err = err.unwrap();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge);
    assert!(err.to_string().contains("max_response_body_bytes"), "{err}");
    assert!(seen >= 8 << 20, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_content_codings_are_all_undone() {
    let srv = server().await;
    let c = client(&srv);
    for codings in [
        "gzip,br",
        "br,zstd,deflate",
        "gzip,gzip",
        "zstd,gzip,br,deflate",
    ] {
        for url in [srv.url("/layers"), srv.tls_url("/layers")] {
            let r = c
                .get(&format!("{url}?codings={codings}&size=5000"))
                .send()
                .await
                .unwrap();
            assert!(r.headers().get("content-encoding").is_none(), "{codings}");
            assert!(r.headers().get("content-length").is_none(), "{codings}");
            let body = r.bytes().await.unwrap();
            assert_eq!(body.len(), 5000, "{codings}");
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(doc["coding"], "layers", "{codings}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codings_beyond_what_is_decoded_are_never_half_decoded() {
    let srv = server().await;
    let c = client(&srv);
    // Five layers: refused with a clear error.
    let r = c
        .get(&srv.url("/layers?codings=gzip,gzip,gzip,gzip,gzip"))
        .send()
        .await
        .unwrap();
    let (_, err) = read_all(r).await;
    let err = err.unwrap();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("5 content codings"), "{err}");
    // A coding the client did not offer: handed over as it came, header included.
    let c = client_with(&srv, |cfg| {
        cfg.compression.accept = vec![wirecore::config::Encoding::Gzip];
    });
    let r = c
        .get(&srv.url("/layers?codings=gzip,br&size=5000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip, br");
    let raw = r.bytes().await.unwrap();
    assert!(
        raw.len() < 5000 && !raw.starts_with(b"{"),
        "{} bytes",
        raw.len()
    );
}
