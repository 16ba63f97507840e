//! The response cache against the test server's `/cache/NAME` endpoint, which sends the caching
//! headers a test asks for and counts requests per path (`x-served`, `per_path_requests`).

mod support;

use support::*;
use wirecore::{CacheStatus, Client, HeaderMap, StatusCode};

fn cached_client(srv: &TestServer) -> Client {
    client_with(srv, |c| c.cache.enabled = true)
}

/// Requests the server has answered on `path`.
fn served(srv: &TestServer, path: &str) -> u64 {
    srv.counters()
        .per_path_requests
        .get(path)
        .copied()
        .unwrap_or(0)
}

/// What a test checks of a response besides its body.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    cache: Option<CacheStatus>,
}

impl Head {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn cache_status(&self) -> Option<CacheStatus> {
        self.cache
    }
}

async fn get(c: &Client, url: &str, headers: &[(&str, &str)]) -> (Head, serde_json::Value) {
    let mut b = c.get(url);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let r = b.send().await.unwrap();
    let head = Head {
        status: r.status(),
        headers: r.headers().clone(),
        cache: r.cache_status(),
    };
    let json = r.json().await.unwrap();
    (head, json)
}

#[tokio::test]
async fn a_fresh_response_is_served_without_the_server() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/fresh?cache_control=max-age=60");
    let (first, body1) = get(&c, &url, &[]).await;
    assert_eq!(first.cache_status(), Some(CacheStatus::Miss));
    assert!(
        first.headers().get("age").is_none(),
        "{:?}",
        first.headers()
    );
    let (second, body2) = get(&c, &url, &[]).await;
    assert_eq!(second.cache_status(), Some(CacheStatus::Hit));
    assert_eq!(second.status(), 200);
    assert_eq!(body1, body2);
    assert_eq!(body2["served"], 1);
    assert_eq!(second.headers()["x-served"], "1");
    let age: u64 = second.headers()["age"].to_str().unwrap().parse().unwrap();
    assert!(age < 60, "{age}");
    assert_eq!(served(&srv, "/cache/fresh"), 1);
}

#[tokio::test]
async fn a_stale_response_is_revalidated_and_a_304_updates_headers_but_keeps_the_body() {
    let srv = server().await;
    let c = cached_client(&srv);
    // max-age=0: stored (it has a validator) but stale at once.
    let url = srv.url("/cache/etag?cache_control=max-age=0&etag=v1");
    let (first, body1) = get(&c, &url, &[]).await;
    assert_eq!(first.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(body1["served"], 1);
    for n in 2..=3 {
        let (again, body) = get(&c, &url, &[]).await;
        assert_eq!(again.cache_status(), Some(CacheStatus::Revalidated));
        assert_eq!(
            again.status(),
            200,
            "the 304 is the cache's, not the caller's"
        );
        assert_eq!(body, body1, "the stored body is kept");
        assert_eq!(again.headers()["x-served"], n.to_string().as_str());
        assert_eq!(again.headers()["etag"], "\"v1\"");
        assert!(again.headers().contains_key("age"));
    }
    let log = srv.requests();
    assert_eq!(log.len(), 3);
    assert!(!log[0].headers.contains_key("if-none-match"));
    assert_eq!(log[1].headers["if-none-match"], "\"v1\"");
    assert_eq!(served(&srv, "/cache/etag"), 3);
}

#[tokio::test]
async fn last_modified_revalidates_with_if_modified_since() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/lm?cache_control=no-cache&last_modified=1000000000");
    let (first, body1) = get(&c, &url, &[]).await;
    assert_eq!(first.cache_status(), Some(CacheStatus::Miss));
    let (again, body) = get(&c, &url, &[]).await;
    assert_eq!(again.cache_status(), Some(CacheStatus::Revalidated));
    assert_eq!(body, body1);
    let log = srv.requests();
    assert_eq!(
        log[1].headers["if-modified-since"],
        "Sun, 09 Sep 2001 01:46:40 GMT"
    );
}

#[tokio::test]
async fn heuristic_freshness_comes_from_last_modified() {
    let srv = server().await;
    let c = cached_client(&srv);
    // Modified in 2001, no explicit lifetime: fresh for 10% of its age.
    let url = srv.url("/cache/heuristic?last_modified=1000000000");
    get(&c, &url, &[]).await;
    let (again, _) = get(&c, &url, &[]).await;
    assert_eq!(again.cache_status(), Some(CacheStatus::Hit));
    assert_eq!(served(&srv, "/cache/heuristic"), 1);
}

#[tokio::test]
async fn vary_keeps_variants_apart() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/vary?cache_control=max-age=60&vary=accept-language");
    let (en, en_body) = get(&c, &url, &[("accept-language", "en")]).await;
    let (fr, fr_body) = get(&c, &url, &[("accept-language", "fr")]).await;
    assert_eq!(en.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(fr.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(en_body["vary"]["accept-language"], "en");
    assert_eq!(fr_body["vary"]["accept-language"], "fr");
    let (en_again, en_again_body) = get(&c, &url, &[("accept-language", "en")]).await;
    let (fr_again, fr_again_body) = get(&c, &url, &[("accept-language", "fr")]).await;
    assert_eq!(en_again.cache_status(), Some(CacheStatus::Hit));
    assert_eq!(fr_again.cache_status(), Some(CacheStatus::Hit));
    assert_eq!(en_again_body, en_body);
    assert_eq!(fr_again_body, fr_body);
    let (none, _) = get(&c, &url, &[]).await;
    assert_eq!(none.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(served(&srv, "/cache/vary"), 3);
}

#[tokio::test]
async fn no_store_is_never_stored() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/nostore?cache_control=no-store,max-age=60&etag=v1");
    for _ in 0..3 {
        let (r, _) = get(&c, &url, &[]).await;
        assert_eq!(r.cache_status(), Some(CacheStatus::Miss));
    }
    assert_eq!(served(&srv, "/cache/nostore"), 3);
    assert!(
        srv.requests()
            .iter()
            .all(|r| !r.headers.contains_key("if-none-match"))
    );
    // The request's own no-store keeps a storable answer out too.
    let url = srv.url("/cache/reqnostore?cache_control=max-age=60");
    for _ in 0..2 {
        get(&c, &url, &[("cache-control", "no-store")]).await;
    }
    let (r, _) = get(&c, &url, &[]).await;
    assert_eq!(r.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(served(&srv, "/cache/reqnostore"), 3);
}

#[tokio::test]
async fn an_unsafe_method_invalidates_the_url() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/inv?cache_control=max-age=60");
    get(&c, &url, &[]).await;
    let (hit, _) = get(&c, &url, &[]).await;
    assert_eq!(hit.cache_status(), Some(CacheStatus::Hit));
    let post = c.post(&url).body("x").send().await.unwrap();
    assert_eq!(post.status(), 200);
    assert_eq!(
        post.cache_status(),
        None,
        "an unsafe method is not looked up"
    );
    post.bytes().await.unwrap();
    let (after, body) = get(&c, &url, &[]).await;
    assert_eq!(after.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(body["served"], 3);
    // A failed unsafe request (4xx) leaves the entry alone.
    let url404 = srv.url("/status/404");
    let e = c.delete(&url404).send().await.unwrap();
    assert_eq!(e.status(), 404);
    let (still, _) = get(&c, &url, &[]).await;
    assert_eq!(still.cache_status(), Some(CacheStatus::Hit));
}

#[tokio::test]
async fn an_answer_to_authorization_is_stored_only_when_its_directives_allow() {
    let srv = server().await;
    let c = cached_client(&srv);
    let auth = [("authorization", "Bearer t")];
    let url = srv.url("/cache/auth?cache_control=max-age=60");
    get(&c, &url, &auth).await;
    let (r, _) = get(&c, &url, &auth).await;
    assert_eq!(r.cache_status(), Some(CacheStatus::Miss));
    let url = srv.url("/cache/authpublic?cache_control=public,max-age=60");
    get(&c, &url, &auth).await;
    let (r, _) = get(&c, &url, &auth).await;
    assert_eq!(r.cache_status(), Some(CacheStatus::Hit));
}

#[tokio::test]
async fn a_shared_cache_does_not_store_private_answers() {
    let srv = server().await;
    let url = srv.url("/cache/private?cache_control=private,max-age=60");
    let private = cached_client(&srv);
    get(&private, &url, &[]).await;
    let (r, _) = get(&private, &url, &[]).await;
    assert_eq!(r.cache_status(), Some(CacheStatus::Hit));
    let shared = client_with(&srv, |c| {
        c.cache.enabled = true;
        c.cache.shared = true;
    });
    get(&shared, &url, &[]).await;
    let (r, _) = get(&shared, &url, &[]).await;
    assert_eq!(r.cache_status(), Some(CacheStatus::Miss));
}

#[tokio::test]
async fn a_body_over_max_entry_bytes_passes_through_unstored() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.cache.enabled = true;
        c.cache.max_entry_bytes = 8;
    });
    let url = srv.url("/cache/big?cache_control=max-age=60");
    let (first, body) = get(&c, &url, &[]).await;
    assert_eq!(first.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(body["path"], "/cache/big");
    let (again, _) = get(&c, &url, &[]).await;
    assert_eq!(again.cache_status(), Some(CacheStatus::Miss));
    assert_eq!(served(&srv, "/cache/big"), 2);
}

#[tokio::test]
async fn without_a_cache_nothing_is_stored_and_no_status_is_reported() {
    let srv = server().await;
    let c = client(&srv);
    let url = srv.url("/cache/off?cache_control=max-age=60");
    for _ in 0..2 {
        let (r, _) = get(&c, &url, &[]).await;
        assert_eq!(r.cache_status(), None);
    }
    assert_eq!(served(&srv, "/cache/off"), 2);
}

#[test]
fn cache_config_is_checked() {
    let e = wirecore::Config::from_json(
        r#"{"cache": {"enabled": true, "max_bytes": 10, "max_entry_bytes": 100}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("cache.max_entry_bytes"), "{e}");
    let e = wirecore::Config::from_json(r#"{"cache": {"size": 1}}"#).unwrap_err();
    assert!(e.to_string().contains("size"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_identical_concurrent_gets_make_one_request() {
    let srv = server().await;
    let c = cached_client(&srv);
    // The first answer takes 500 ms: every other caller arrives while it is in the air (and
    // one arriving after it landed is a cache hit: still one request).
    let url = srv.url("/cache/herd?cache_control=max-age=60&delay_ms=500");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                assert!(matches!(
                    r.cache_status(),
                    Some(CacheStatus::Miss | CacheStatus::Hit)
                ));
                r.json::<serde_json::Value>().await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        let body = t.await.unwrap();
        assert_eq!(body["path"], "/cache/herd");
        assert_eq!(body["served"], 1);
    }
    assert_eq!(served(&srv, "/cache/herd"), 1);
    let s = c.stats().cache;
    assert_eq!(s.coalesced + s.hits, 99, "{s:?}");
    assert_eq!(s.misses, 1 + s.coalesced, "{s:?}");
    assert!(s.coalesced > 0, "{s:?}");
    assert_eq!((s.stores, s.l1_entries), (1, 1), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_arriving_as_its_flight_lands_does_not_fly_again() {
    // Callers spread over the moment the answer comes back: one whose lookup ran before the
    // flight stored its answer and whose join came after the flight landed used to start a
    // second flight (a second upstream request); it must find the stored answer instead.
    let srv = server().await;
    let c = cached_client(&srv);
    for round in 0..30 {
        let path = format!("/cache/landing{round}");
        let url = srv.url(&format!("{path}?cache_control=max-age=60&delay_ms=2"));
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_micros(i * 37 % 6_000)).await;
                    let r = c.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.json::<serde_json::Value>().await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap()["served"], 1, "round {round}");
        }
        assert_eq!(served(&srv, &path), 1, "round {round}");
    }
    let s = c.stats().cache;
    assert_eq!(s.hits + s.misses, 30 * 200, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_caller_leaves_the_others_of_its_flight_intact() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/cancel?cache_control=max-age=60&delay_ms=3000");
    let send = |c: &Client| {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            let r = c.get(&url).send().await.unwrap();
            r.json::<serde_json::Value>().await.unwrap()
        })
    };
    let first = send(&c);
    wait_arrived(&srv, 0).await;
    let others = [send(&c), send(&c)];
    wait_until("two callers joined the flight", || {
        c.stats().cache.coalesced == 2
    })
    .await;
    // The caller that started the flight goes away; its request goes on for the others.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    for t in others {
        let body = t.await.unwrap();
        assert_eq!(body["served"], 1);
    }
    assert_eq!(served(&srv, "/cache/cancel"), 1);
    assert_eq!(srv.counters().requests_cancelled, 0);
    let (again, _) = get(&c, &url, &[]).await;
    assert_eq!(again.cache_status(), Some(CacheStatus::Hit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_a_failed_flight_all_get_its_error() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.cache.enabled = true;
        c.retry.enabled = false;
    });
    let reset = Reply {
        delay_ms: 500,
        action: Some(wirecore_testserver::Action::Reset),
        ..Reply::default()
    };
    srv.script("/s/herd-fails", vec![reset; 10]);
    let url = srv.url("/s/herd-fails");
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.get(&url).send().await.unwrap_err() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().code(), "io");
    }
    let s = c.stats().cache;
    assert!(s.coalesced > 0, "{s:?}");
    assert_eq!(srv.counters().requests, 10 - s.coalesced, "{s:?}");
}

#[tokio::test]
async fn a_large_answer_streams_to_one_caller_without_a_second_request() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.cache.enabled = true;
        c.cache.max_entry_bytes = 1000;
    });
    // Unknown length (chunked), past max_entry_bytes: read ahead, then handed over streaming.
    let r = c
        .get(&srv.url("/stream?chunks=8&size=512"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 8 * 512);
    let r = c.get(&srv.url("/bytes/5000")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), 5000);
    assert_eq!(srv.counters().requests, 2);
}

/// What a test compares of two clients' stats: everything but timings.
fn comparable(c: &Client) -> serde_json::Value {
    let mut v = serde_json::to_value(c.stats()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("latency");
    o.remove("requests_per_second");
    v
}

/// A plain fresh hit is answered before the request's future is built (`Client::execute`); a
/// URL with userinfo goes the whole way (the redirect loop moves it to `Authorization` first)
/// to the same entry. Both leave the same stats, response and jar: the hit is counted once, as a
/// request and a 2xx, spends no attempt (no rate limiter, breaker or concurrency limit), and its
/// `Set-Cookie` reaches the jar again.
#[tokio::test]
async fn a_fresh_hit_answered_early_counts_as_one_through_the_whole_path() {
    let srv = server().await;
    let client = || {
        client_with(&srv, |c| {
            c.cache.enabled = true;
            c.cookies.enabled = true;
        })
    };
    let (early, whole) = (client(), client());
    let query = "?cache_control=max-age=60&set_cookie=seen%3D1";
    let (a, b) = (
        srv.url(&format!("/cache/early{query}")),
        srv.url(&format!("/cache/whole{query}")),
    );
    let b_userinfo = b.replacen("http://", "http://user:pw@", 1);
    for (c, miss, hit) in [(&early, &a, &a), (&whole, &b, &b_userinfo)] {
        let (first, _) = get(c, miss, &[]).await;
        assert_eq!(first.cache_status(), Some(CacheStatus::Miss));
        c.clear_cookies();
        let (second, body) = get(c, hit, &[]).await;
        assert_eq!(second.cache_status(), Some(CacheStatus::Hit));
        assert_eq!(second.status(), 200);
        assert_eq!(body["served"], 1);
        assert_eq!(
            second
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap()),
            Some("seen=1"),
            "{:?} then {:?}",
            first.headers(),
            second.headers()
        );
        assert!(second.headers().contains_key("age"));
        let jar: Vec<_> = c.cookies().into_iter().map(|k| (k.name, k.value)).collect();
        assert_eq!(
            jar,
            [("seen".to_owned(), "1".to_owned())],
            "the hit's Set-Cookie"
        );
    }
    let s = early.stats();
    assert_eq!(
        (
            s.requests_total,
            s.requests_in_flight,
            s.cache.hits,
            s.cache.misses
        ),
        (2, 0, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.resilience.attempts, 1, "the hit made no attempt: {s:?}");
    assert_eq!(s.latency.count, 2, "{s:?}");
    assert_eq!(comparable(&early), comparable(&whole));
    let histogram_count = |c: &Client| {
        c.prometheus()
            .lines()
            .filter(|l| l.starts_with("wirecore_request_duration_seconds_count"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(histogram_count(&early), histogram_count(&whole));
    assert_eq!(
        served(&srv, "/cache/early") + served(&srv, "/cache/whole"),
        2
    );
}

/// A hit spends no rate-limit token, as it makes no attempt: with one token a period, the miss
/// takes it and hits go on being answered.
#[tokio::test]
async fn fresh_hits_pass_no_rate_limiter() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.cache.enabled = true;
        c.rate_limit.enabled = true;
        c.rate_limit.requests = 1;
        c.rate_limit.burst = 1;
        c.rate_limit.per_ms = 600_000;
        c.rate_limit.mode = wirecore::config::RateLimitMode::Fail;
    });
    let url = srv.url("/cache/limited?cache_control=max-age=60");
    for _ in 0..5 {
        get(&c, &url, &[]).await;
    }
    let s = c.stats();
    assert_eq!(
        (s.cache.hits, s.resilience.rate_limit.rejected),
        (4, 0),
        "{s:?}"
    );
    let e = c
        .get(&srv.url("/cache/other?cache_control=max-age=60"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), "rate_limited", "the one token went to the miss");
}

/// With tracing on, a hit is a client span like any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_hit_is_one_span() {
    let srv = server().await;
    let c = client_with(&srv, |c| {
        c.cache.enabled = true;
        c.otel.enabled = true;
        c.otel.endpoint = srv.url("");
        c.otel.export_interval_ms = 600_000;
    });
    let url = srv.url("/cache/traced?cache_control=max-age=60");
    assert_eq!(
        get(&c, &url, &[]).await.0.cache_status(),
        Some(CacheStatus::Miss)
    );
    assert_eq!(
        get(&c, &url, &[]).await.0.cache_status(),
        Some(CacheStatus::Hit)
    );
    c.flush_telemetry().await;
    let spans: Vec<serde_json::Value> = srv
        .otlp()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/v1/traces")
        .flat_map(|e| {
            e["body"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(c.stats().cache.hits, 1);
}

/// An `Age` too large to add a second to (RFC 9111 §1.2.2: a cache takes a delta-seconds it
/// cannot represent as 2^31) neither panics the request path nor serves the response as fresh:
/// it is stored as stale (2^31 seconds old) and revalidated, as any response older than its
/// max-age is.
#[tokio::test]
async fn an_age_too_large_to_count_is_two_to_the_31_seconds_not_a_panic() {
    let srv = server().await;
    let c = cached_client(&srv);
    for (name, age) in [
        ("max", u64::MAX.to_string()),
        ("over31", (1u64 << 40).to_string()),
    ] {
        let url = srv.url(&format!(
            "/cache/age-{name}?cache_control=max-age=60&etag=t&age={age}"
        ));
        let (first, _) = get(&c, &url, &[]).await;
        assert_eq!(first.status(), 200);
        // Resident for a second at least: the age grows past what was received.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (second, body) = get(&c, &url, &[]).await;
        assert_eq!(second.status(), 200, "{name}");
        assert_ne!(
            second.cache_status(),
            Some(CacheStatus::Hit),
            "{name}: a response older than its max-age is not fresh"
        );
        assert_eq!(body["path"], format!("/cache/age-{name}"));
    }
}
