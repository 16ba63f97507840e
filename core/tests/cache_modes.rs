//! Per-request cache modes (`RequestOptions::cache`, fetch's `cache` option) against the test
//! server's `/cache/NAME` endpoint, which counts the requests it answers per path.

mod support;

use support::*;
use wirecore::{CacheMode, CacheStatus, Client, StatusCode};

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

/// Status, cache status and the `served` count of the body (0 for an empty body).
async fn get(c: &Client, url: &str, mode: CacheMode) -> (StatusCode, Option<CacheStatus>, u64) {
    let r = c.get(url).cache(mode).send().await.unwrap();
    let (status, cache) = (r.status(), r.cache_status());
    let body = r.bytes().await.unwrap();
    let served = if body.is_empty() {
        0
    } else {
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["served"]
            .as_u64()
            .unwrap()
    };
    (status, cache, served)
}

/// The `Cache-Control` header of the last request the server saw.
fn last_cache_control(srv: &TestServer) -> Option<String> {
    srv.requests().last()?.headers.get("cache-control").cloned()
}

#[tokio::test]
async fn force_cache_serves_a_stale_entry_without_the_server() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/force?cache_control=max-age=0&etag=v1");
    let miss = get(&c, &url, CacheMode::Default).await;
    assert_eq!(miss, (StatusCode::OK, Some(CacheStatus::Miss), 1));
    let stale = get(&c, &url, CacheMode::ForceCache).await;
    assert_eq!(stale, (StatusCode::OK, Some(CacheStatus::Stale), 1));
    assert_eq!(served(&srv, "/cache/force"), 1);
    // Without an entry, force-cache asks and stores.
    let other = srv.url("/cache/force-new?cache_control=max-age=60");
    let first = get(&c, &other, CacheMode::ForceCache).await;
    assert_eq!(first, (StatusCode::OK, Some(CacheStatus::Miss), 1));
    let again = get(&c, &other, CacheMode::Default).await;
    assert_eq!(again, (StatusCode::OK, Some(CacheStatus::Hit), 1));
    let s = c.stats().cache;
    assert_eq!(
        (s.stale_served, s.hits, s.revalidations),
        (1, 1, 0),
        "{s:?}"
    );
}

#[tokio::test]
async fn only_if_cached_never_asks_the_server_and_answers_504_without_an_entry() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/oic?cache_control=max-age=60");
    let none = get(&c, &url, CacheMode::OnlyIfCached).await;
    assert_eq!(
        none,
        (StatusCode::GATEWAY_TIMEOUT, Some(CacheStatus::Miss), 0)
    );
    assert_eq!(served(&srv, "/cache/oic"), 0);
    get(&c, &url, CacheMode::Default).await;
    let hit = get(&c, &url, CacheMode::OnlyIfCached).await;
    assert_eq!(hit, (StatusCode::OK, Some(CacheStatus::Hit), 1));
    let stale_url = srv.url("/cache/oic-stale?cache_control=no-cache&etag=e");
    get(&c, &stale_url, CacheMode::Default).await;
    let stale = get(&c, &stale_url, CacheMode::OnlyIfCached).await;
    assert_eq!(stale, (StatusCode::OK, Some(CacheStatus::Stale), 1));
    // What the cache cannot answer at all is not sent either: a POST, a conditional GET.
    let post = c
        .post(&srv.url("/echo"))
        .cache(CacheMode::OnlyIfCached)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::GATEWAY_TIMEOUT);
    let conditional = c
        .get(&url)
        .header("if-none-match", "\"x\"")
        .cache(CacheMode::OnlyIfCached)
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), StatusCode::GATEWAY_TIMEOUT);
    // Nor by a client without a cache.
    let plain = client(&srv);
    let r = get(&plain, &url, CacheMode::OnlyIfCached).await;
    assert_eq!(r, (StatusCode::GATEWAY_TIMEOUT, Some(CacheStatus::Miss), 0));
    assert_eq!(srv.counters().requests, 2);
}

#[tokio::test]
async fn no_cache_revalidates_even_a_fresh_entry() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/nc?cache_control=max-age=60&etag=v1");
    get(&c, &url, CacheMode::Default).await;
    let r = c.get(&url).cache(CacheMode::NoCache).send().await.unwrap();
    assert_eq!(r.cache_status(), Some(CacheStatus::Revalidated));
    assert_eq!(r.headers()["x-served"], "2");
    let req = srv.requests().pop().unwrap();
    assert_eq!(req.headers["if-none-match"], "\"v1\"");
    assert_eq!(req.headers["cache-control"], "max-age=0");
    // Without an entry it is a plain miss, stored.
    let other = srv.url("/cache/nc-new?cache_control=max-age=60");
    let first = get(&c, &other, CacheMode::NoCache).await;
    assert_eq!(first, (StatusCode::OK, Some(CacheStatus::Miss), 1));
    let hit = get(&c, &other, CacheMode::Default).await;
    assert_eq!(hit, (StatusCode::OK, Some(CacheStatus::Hit), 1));
}

#[tokio::test]
async fn no_store_neither_reads_nor_writes_the_cache() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/ns?cache_control=max-age=60");
    get(&c, &url, CacheMode::Default).await;
    let r = get(&c, &url, CacheMode::NoStore).await;
    assert_eq!(r, (StatusCode::OK, None, 2));
    assert_eq!(last_cache_control(&srv).as_deref(), Some("no-cache"));
    // The entry from before is untouched (served 1), and a no-store answer is not kept.
    assert_eq!(get(&c, &url, CacheMode::Default).await.2, 1);
    let other = srv.url("/cache/ns-new?cache_control=max-age=60");
    get(&c, &other, CacheMode::NoStore).await;
    let after = get(&c, &other, CacheMode::Default).await;
    assert_eq!(after, (StatusCode::OK, Some(CacheStatus::Miss), 2));
    assert_eq!(c.stats().cache.stores, 2);
}

#[tokio::test]
async fn reload_skips_the_lookup_but_stores_the_answer() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/reload?cache_control=max-age=60");
    get(&c, &url, CacheMode::Default).await;
    let r = get(&c, &url, CacheMode::Reload).await;
    assert_eq!(r, (StatusCode::OK, Some(CacheStatus::Miss), 2));
    assert_eq!(last_cache_control(&srv).as_deref(), Some("no-cache"));
    let hit = get(&c, &url, CacheMode::Default).await;
    assert_eq!(hit, (StatusCode::OK, Some(CacheStatus::Hit), 2));
}

#[tokio::test]
async fn modes_send_fetchs_cache_control_unless_the_caller_set_one() {
    let srv = server().await;
    let plain = client(&srv);
    for (mode, sent) in [
        (CacheMode::NoStore, Some("no-cache")),
        (CacheMode::Reload, Some("no-cache")),
        (CacheMode::NoCache, Some("max-age=0")),
        (CacheMode::ForceCache, None),
        (CacheMode::Default, None),
    ] {
        let r = plain
            .get(&srv.url("/echo"))
            .cache(mode)
            .send()
            .await
            .unwrap();
        assert_eq!(r.cache_status(), None, "{mode}");
        r.bytes().await.unwrap();
        assert_eq!(last_cache_control(&srv).as_deref(), sent, "{mode}");
        plain
            .get(&srv.url("/echo"))
            .header("cache-control", "max-stale")
            .cache(mode)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            last_cache_control(&srv).as_deref(),
            Some("max-stale"),
            "{mode}"
        );
    }
}

// --- stale-while-revalidate, stale-if-error, coalesced revalidations --------------------------

fn no_retries(srv: &TestServer) -> Client {
    client_with(srv, |c| {
        c.cache.enabled = true;
        c.retry.enabled = false;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_serves_stale_and_refreshes_once_in_the_background() {
    let srv = server().await;
    let c = cached_client(&srv);
    // Every answer takes 500 ms: the refresh is still in the air when the stale copies go out.
    let url = srv
        .url("/cache/swr?cache_control=max-age=0,stale-while-revalidate=60&etag=v1&delay_ms=500");
    get(&c, &url, CacheMode::Default).await;
    let (first, second) = tokio::join!(c.get(&url).send(), c.get(&url).send());
    for r in [first.unwrap(), second.unwrap()] {
        assert_eq!(r.cache_status(), Some(CacheStatus::Stale));
        assert_eq!(r.headers()["x-served"], "1");
    }
    wait_until("the background refresh landed", || {
        c.stats().cache.not_modified == 1
    })
    .await;
    let s = c.stats().cache;
    assert_eq!(
        (s.background_refreshes, s.stale_served, s.revalidations),
        (1, 2, 1),
        "{s:?}"
    );
    assert_eq!(served(&srv, "/cache/swr"), 2);
    // The 304 refreshed the stored headers: the next stale copy says so.
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.cache_status(), Some(CacheStatus::Stale));
    assert_eq!(r.headers()["x-served"], "2");
    // Close waits for that request's refresh.
    c.close(std::time::Duration::from_secs(10)).await;
    assert_eq!(served(&srv, "/cache/swr"), 3);
    assert_eq!(c.stats().cache.not_modified, 2);
}

#[tokio::test]
async fn must_revalidate_and_no_cache_modes_never_serve_stale_while_revalidating() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv
        .url("/cache/mr?cache_control=max-age=0,must-revalidate,stale-while-revalidate=60&etag=v1");
    get(&c, &url, CacheMode::Default).await;
    let r = get(&c, &url, CacheMode::Default).await;
    assert_eq!(r, (StatusCode::OK, Some(CacheStatus::Revalidated), 1));
    let url = srv.url("/cache/swr-nc?cache_control=max-age=0,stale-while-revalidate=60&etag=v1");
    get(&c, &url, CacheMode::Default).await;
    let r = get(&c, &url, CacheMode::NoCache).await;
    assert_eq!(r, (StatusCode::OK, Some(CacheStatus::Revalidated), 1));
    assert_eq!(c.stats().cache.background_refreshes, 0);
}

#[tokio::test]
async fn stale_if_error_serves_the_stale_entry_when_revalidation_fails() {
    let srv = server().await;
    let c = no_retries(&srv);
    let url = srv.url("/cache/sie?cache_control=max-age=0,stale-if-error=60&etag=v1");
    get(&c, &url, CacheMode::Default).await;
    srv.script(
        "/cache/sie",
        vec![Reply {
            status: 503,
            ..Reply::default()
        }],
    );
    let r = get(&c, &url, CacheMode::Default).await;
    assert_eq!(r, (StatusCode::OK, Some(CacheStatus::Stale), 1));
    // A failure without an answer: the server never answers within the read timeout.
    let hang = Reply {
        action: Some(wirecore_testserver::Action::Hang),
        ..Reply::default()
    };
    srv.script("/cache/sie", vec![hang]);
    let r = c
        .get(&url)
        .read_timeout(std::time::Duration::from_millis(200))
        .send()
        .await
        .unwrap();
    assert_eq!(r.cache_status(), Some(CacheStatus::Stale));
    // The server is back: revalidated as usual.
    let r = get(&c, &url, CacheMode::Default).await;
    assert_eq!(r, (StatusCode::OK, Some(CacheStatus::Revalidated), 1));
    // A 404 is an answer, not an error; and no-cache mode wants a confirmed answer.
    srv.script(
        "/cache/sie",
        vec![Reply {
            status: 503,
            ..Reply::default()
        }],
    );
    let r = c.get(&url).cache(CacheMode::NoCache).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let s = c.stats().cache;
    assert_eq!((s.stale_if_error, s.stale_served), (2, 2), "{s:?}");
    // Without the directive the error goes to the caller.
    let plain = srv.url("/cache/no-sie?cache_control=max-age=0&etag=v1");
    get(&c, &plain, CacheMode::Default).await;
    srv.script(
        "/cache/no-sie",
        vec![Reply {
            status: 502,
            ..Reply::default()
        }],
    );
    let r = c.get(&plain).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revalidations_of_a_stale_entry_share_one_request() {
    let srv = server().await;
    let c = cached_client(&srv);
    let url = srv.url("/cache/reval-herd?cache_control=max-age=0&etag=v1&delay_ms=300");
    get(&c, &url, CacheMode::Default).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move { c.get(&url).send().await.unwrap() })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.cache_status(), Some(CacheStatus::Revalidated));
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["served"], 1);
    }
    assert_eq!(served(&srv, "/cache/reval-herd"), 2);
    let s = c.stats().cache;
    assert_eq!((s.revalidations, s.not_modified), (1, 1), "{s:?}");
}
