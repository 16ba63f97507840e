//! The cache's Redis second level against a real redis-server and the test server's
//! `/cache/NAME` endpoint: an entry stored by one process is a hit in another, the entry is in the
//! documented format, and a dead or silent Redis is bypassed while requests succeed.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::*;
use wirecore::{CacheStatus, Client, Config};

fn l2_client(
    srv: &TestServer,
    redis_url: &str,
    prefix: &str,
    f: impl FnOnce(&mut Config),
) -> Client {
    client_with(srv, |c| {
        c.retry.enabled = false;
        c.cache.enabled = true;
        redis_url.clone_into(&mut c.cache.l2.url);
        prefix.clone_into(&mut c.cache.l2.key_prefix);
        c.cache.l2.timeout_ms = 2_000;
        f(c);
    })
}

/// Requests the server has answered on `path`.
fn served(srv: &TestServer, path: &str) -> u64 {
    srv.counters()
        .per_path_requests
        .get(path)
        .copied()
        .unwrap_or(0)
}

async fn get(c: &Client, url: &str) -> (Option<CacheStatus>, serde_json::Value) {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let status = r.cache_status();
    (status, r.json().await.unwrap())
}

/// Waits until `c` has written `n` entries to Redis (writes run in the background).
async fn stored(c: &Client, n: u64) {
    wait_until("the entry reached Redis", || c.stats().cache.l2_stores >= n).await;
}

fn redis_conn(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// The second process: started by the test below with `WIRECORE_L2_CHILD` set.
async fn child(spec: &str) {
    let (redis_url, rest) = spec.split_once(' ').unwrap();
    let (prefix, url) = rest.split_once(' ').unwrap();
    let c = Client::from_config({
        let mut cfg = Config::default();
        cfg.cache.enabled = true;
        redis_url.clone_into(&mut cfg.cache.l2.url);
        prefix.clone_into(&mut cfg.cache.l2.key_prefix);
        cfg.cache.l2.timeout_ms = 2_000;
        cfg
    })
    .unwrap();
    let (status, body) = get(&c, url).await;
    let s = c.stats().cache;
    println!(
        "status={} served={} l2_hits={}",
        status.map_or("none", CacheStatus::as_str),
        body["served"],
        s.l2_hits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_stored_by_one_process_is_a_hit_in_another() {
    if let Ok(spec) = std::env::var("WIRECORE_L2_CHILD") {
        return child(&spec).await;
    }
    let redis = start_redis();
    let srv = server().await;
    let prefix = "wc-test:two-processes:";
    let url = srv.url("/cache/two?cache_control=max-age=600");
    let c = l2_client(&srv, &redis.url(), prefix, |_| {});
    let (status, body) = get(&c, &url).await;
    assert_eq!(status, Some(CacheStatus::Miss));
    assert_eq!(body["served"], 1);
    stored(&c, 1).await;
    let out = tokio::task::spawn_blocking(move || {
        let kid = Command::new(std::env::current_exe().unwrap())
            .args([
                "an_entry_stored_by_one_process_is_a_hit_in_another",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "WIRECORE_L2_CHILD",
                format!("{} {prefix} {url}", redis.url()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = kid.wait_with_output().unwrap();
        assert!(out.status.success(), "the child process failed");
        let lines: Vec<String> = BufReader::new(&out.stdout[..])
            .lines()
            .map_while(Result::ok)
            .collect();
        (lines, redis)
    })
    .await
    .unwrap();
    let (lines, _redis) = out;
    let report = lines
        .iter()
        .find_map(|l| l.find("status=").map(|at| &l[at..]))
        .expect("the child reported");
    assert_eq!(report, "status=hit served=1 l2_hits=1", "{lines:?}");
    assert_eq!(
        served(&srv, "/cache/two"),
        1,
        "one upstream request for two processes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_from_redis_fills_memory_and_counts() {
    let redis = start_redis();
    let srv = server().await;
    let url = srv.url("/cache/fill?cache_control=max-age=600");
    let a = l2_client(&srv, &redis.url(), "wc-test:fill:", |_| {});
    assert_eq!(get(&a, &url).await.0, Some(CacheStatus::Miss));
    stored(&a, 1).await;
    // Another client: its own memory, the same Redis.
    let b = l2_client(&srv, &redis.url(), "wc-test:fill:", |_| {});
    let (status, body) = get(&b, &url).await;
    assert_eq!(status, Some(CacheStatus::Hit));
    assert_eq!(body["served"], 1);
    let (status, _) = get(&b, &url).await;
    assert_eq!(status, Some(CacheStatus::Hit));
    let s = b.stats().cache;
    assert_eq!((s.hits, s.l2_hits, s.misses), (2, 1, 0), "{s:?}");
    assert_eq!(s.l1_entries, 1, "{s:?}");
    assert_eq!(served(&srv, "/cache/fill"), 1);
    // A prefix is a namespace: another one shares nothing.
    let other = l2_client(&srv, &redis.url(), "wc-test:other:", |_| {});
    assert_eq!(get(&other, &url).await.0, Some(CacheStatus::Miss));
    assert_eq!(other.stats().cache.l2_misses, 1);
}

/// A freshness and a stale window too long to add up (max-age and stale-while-revalidate of
/// u64::MAX seconds) are neither a panic of the request path nor a SET Redis refuses: the entry
/// is kept in Redis for at most 2^31 seconds, and another client hits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifetime_too_long_to_count_is_kept_in_redis_for_two_to_the_31_seconds() {
    let redis = start_redis();
    let srv = server().await;
    let forever = "18446744073709551615";
    let url = srv.url(&format!(
        "/cache/forever?cache_control=public,max-age={forever},stale-while-revalidate={forever}"
    ));
    let a = l2_client(&srv, &redis.url(), "wc-test:forever:", |_| {});
    assert_eq!(get(&a, &url).await.0, Some(CacheStatus::Miss));
    stored(&a, 1).await;
    assert_eq!(a.stats().cache.l2_errors, 0);
    assert_eq!(
        get(&a, &url).await.0,
        Some(CacheStatus::Hit),
        "fresh in memory"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("wc-test:forever:GET {url}"))
        .query(&mut redis_conn(&redis))
        .unwrap();
    assert!(
        ((1i64 << 31) - 60..=1i64 << 31).contains(&ttl),
        "TTL {ttl} s"
    );
    let b = l2_client(&srv, &redis.url(), "wc-test:forever:", |_| {});
    let (status, body) = get(&b, &url).await;
    assert_eq!(status, Some(CacheStatus::Hit));
    assert_eq!(body["served"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_from_redis_is_revalidated_and_its_update_shared() {
    let redis = start_redis();
    let srv = server().await;
    let url = srv.url("/cache/reval?cache_control=no-cache&etag=v1");
    let a = l2_client(&srv, &redis.url(), "wc-test:reval:", |_| {});
    get(&a, &url).await;
    stored(&a, 1).await;
    let b = l2_client(&srv, &redis.url(), "wc-test:reval:", |_| {});
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.cache_status(), Some(CacheStatus::Revalidated));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["served"], 1, "the stored body, confirmed by a 304");
    assert_eq!(served(&srv, "/cache/reval"), 2);
    let s = b.stats().cache;
    assert_eq!((s.l2_hits, s.not_modified), (1, 1), "{s:?}");
    // The refreshed entry is written back.
    stored(&b, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_and_private_answers_are_kept_apart() {
    let redis = start_redis();
    let srv = server().await;
    let a = l2_client(&srv, &redis.url(), "wc-test:vary:", |_| {});
    let b = l2_client(&srv, &redis.url(), "wc-test:vary:", |_| {});
    let url = srv.url("/cache/vary?cache_control=max-age=600&vary=accept");
    let r = a.get(&url).header("accept", "text/a").send().await.unwrap();
    r.bytes().await.unwrap();
    stored(&a, 1).await;
    let r = b.get(&url).header("accept", "text/b").send().await.unwrap();
    assert_eq!(r.cache_status(), Some(CacheStatus::Miss));
    r.bytes().await.unwrap();
    assert_eq!(
        b.stats().cache.l2_misses,
        1,
        "text/a's entry does not answer text/b"
    );
    assert_eq!(served(&srv, "/cache/vary"), 2);
    // `private` stays in memory.
    let private = srv.url("/cache/private?cache_control=private,max-age=600");
    assert_eq!(get(&a, &private).await.0, Some(CacheStatus::Miss));
    assert_eq!(get(&a, &private).await.0, Some(CacheStatus::Hit));
    let mut conn = redis_conn(&redis);
    let key = format!("wc-test:vary:GET {private}");
    let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert!(!exists, "{key} is not in Redis");
    assert_eq!(get(&b, &private).await.0, Some(CacheStatus::Miss));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entry_in_redis_is_in_the_documented_format() {
    let redis = start_redis();
    let srv = server().await;
    let url = srv.url("/cache/format?cache_control=max-age=600&etag=f1");
    let a = l2_client(&srv, &redis.url(), "wc-test:format:", |c| {
        c.cache.l2.stale_ttl_ms = 3_600_000;
    });
    let (_, body) = get(&a, &url).await;
    stored(&a, 1).await;
    let mut conn = redis_conn(&redis);
    let key = format!("wc-test:format:GET {url}");
    let raw: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
    assert_eq!(&raw[..4], b"\x02wce", "format version and magic");
    let be = |at: usize, n: usize| {
        raw[at..at + n]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    assert_eq!(be(4, 2), 200, "status");
    assert_eq!(raw[6], 11, "HTTP/1.1");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let at = be(7, 8);
    assert!(at <= now_ms && now_ms - at < 600_000, "{at} vs {now_ms}");
    let fresh_until = be(15, 8);
    assert!(
        fresh_until > at + 590_000 && fresh_until <= at + 600_000,
        "max-age=600: {fresh_until} for {at}"
    );
    assert_eq!(raw[23], 0, "a private cache's options");
    assert_eq!(be(24, 4), u64::from(0.1f32.to_bits()), "heuristic 10 %");
    assert_eq!(be(28, 4), 86_400, "immutable minimum");
    // The header lists: the varied request headers (none), then the response's.
    let mut pos = 32;
    let mut lists = Vec::new();
    for _ in 0..2 {
        let n = be(pos, 2);
        pos += 2;
        let mut list = Vec::new();
        for _ in 0..n {
            let name_len = be(pos, 2) as usize;
            let name = String::from_utf8(raw[pos + 2..pos + 2 + name_len].to_vec()).unwrap();
            pos += 2 + name_len;
            let value_len = be(pos, 4) as usize;
            let value = String::from_utf8(raw[pos + 4..pos + 4 + value_len].to_vec()).unwrap();
            pos += 4 + value_len;
            list.push((name, value));
        }
        lists.push(list);
    }
    assert_eq!(lists[0], vec![]);
    assert!(
        lists[1].contains(&("etag".to_owned(), "\"f1\"".to_owned())),
        "{:?}",
        lists[1]
    );
    let stored_body: serde_json::Value = serde_json::from_slice(&raw[pos..]).unwrap();
    assert_eq!(stored_body, body);
    // TTL: 600 s of freshness plus the stale window (it has a validator).
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 3_600_000 && ttl <= 4_200_000, "{ttl}");
    // An unsafe method deletes it.
    let r = a.post(&url).send().await.unwrap();
    r.bytes().await.unwrap();
    wait_until("the entry was deleted", || {
        !redis::cmd("EXISTS")
            .arg(&key)
            .query::<bool>(&mut conn)
            .unwrap()
    })
    .await;
}

/// A variant read from Redis joins the variants memory holds for the URL: memory is refilled
/// without reading it first only when it held nothing under the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_from_redis_joins_those_in_memory() {
    let redis = start_redis();
    let srv = server().await;
    let a = l2_client(&srv, &redis.url(), "wc-test:join:", |_| {});
    let b = l2_client(&srv, &redis.url(), "wc-test:join:", |_| {});
    let url = srv.url("/cache/join?cache_control=max-age=600&vary=accept");
    let send = |c: &Client, accept: &'static str| {
        let r = c.get(&url).header("accept", accept);
        async move {
            let r = r.send().await.unwrap();
            let status = r.cache_status();
            r.bytes().await.unwrap();
            status
        }
    };
    // b holds text/a in memory; a then writes text/b to Redis over it.
    assert_eq!(send(&b, "text/a").await, Some(CacheStatus::Miss));
    stored(&b, 1).await;
    assert_eq!(send(&a, "text/b").await, Some(CacheStatus::Miss));
    stored(&a, 1).await;
    assert_eq!(served(&srv, "/cache/join"), 2);
    // b: text/b from Redis, and text/a still from memory.
    assert_eq!(send(&b, "text/b").await, Some(CacheStatus::Hit));
    assert_eq!(send(&b, "text/a").await, Some(CacheStatus::Hit));
    let s = b.stats().cache;
    assert_eq!((s.l2_hits, s.hits, s.l1_entries), (1, 2, 1), "{s:?}");
    assert_eq!(served(&srv, "/cache/join"), 2);
}

/// An entry of format version 1 (a JSON head: what clients before version 2 wrote) or a value
/// that is no entry at all is a miss, counted as one: the server answers, nothing fails, and
/// the answer is written over it in the current format, a hit for the next process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_format_or_garbage_entry_is_a_miss_and_is_written_over() {
    let redis = start_redis();
    let srv = server().await;
    let mut conn = redis_conn(&redis);
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for (name, path) in [
        ("version 1", "/cache/v1?cache_control=max-age=600"),
        ("garbage", "/cache/garbage?cache_control=max-age=600"),
        ("magic", "/cache/magic?cache_control=max-age=600"),
    ] {
        let url = srv.url(path);
        let prefix = format!("wc-test:old:{name}:");
        let key = format!("{prefix}GET {url}");
        let value: Vec<u8> = match name {
            "version 1" => {
                let json = format!(
                    r#"{{"status":200,"version":"HTTP/1.1","method":"GET","url":"{url}","response_time_ms":{at},"request_headers":[],"headers":[["cache-control","max-age=600"],["content-type","application/json"]]}}"#
                );
                let mut v = vec![1];
                v.extend_from_slice(&u32::try_from(json.len()).unwrap().to_be_bytes());
                v.extend_from_slice(json.as_bytes());
                v.extend_from_slice(br#"{"served":999}"#);
                v
            }
            "garbage" => b"\x02 not an entry at all".to_vec(),
            _ => b"\x02xyz\x00\xc8\x0b".to_vec(),
        };
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query(&mut conn)
            .unwrap();
        let a = l2_client(&srv, &redis.url(), &prefix, |_| {});
        let (status, body) = get(&a, &url).await;
        assert_eq!(status, Some(CacheStatus::Miss), "{name}");
        assert_eq!(body["served"], 1, "{name}: the server answered");
        let s = a.stats().cache;
        assert_eq!(
            (s.l2_hits, s.l2_misses, s.l2_errors),
            (0, 1, 0),
            "{name}: {s:?}"
        );
        stored(&a, 1).await;
        let raw: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        assert_eq!(&raw[..4], b"\x02wce", "{name}: written over");
        let b = l2_client(&srv, &redis.url(), &prefix, |_| {});
        let (status, body) = get(&b, &url).await;
        assert_eq!(status, Some(CacheStatus::Hit), "{name}");
        assert_eq!(body["served"], 1, "{name}");
        assert_eq!(b.stats().cache.l2_hits, 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_mid_test_bypasses_it_and_requests_succeed() {
    let redis = start_redis();
    let srv = server().await;
    let url = redis.url();
    let cfg = |c: &mut Config| c.cache.l2.retry_after_ms = 600_000;
    let a = l2_client(&srv, &url, "wc-test:kill:", cfg);
    get(&a, &srv.url("/cache/k0?cache_control=max-age=600")).await;
    stored(&a, 1).await;
    drop(redis);
    for i in 1..=5 {
        let (status, _) = get(
            &a,
            &srv.url(&format!("/cache/k{i}?cache_control=max-age=600")),
        )
        .await;
        assert_eq!(status, Some(CacheStatus::Miss));
    }
    let s = a.stats().cache;
    assert!(s.l2_errors >= 1, "{s:?}");
    // Once failed, Redis is skipped for retry_after_ms: later reads and writes are bypassed.
    assert!(s.l2_bypassed >= 4, "{s:?}");
    assert_eq!(s.stores, 6, "memory still stores: {s:?}");
    // A second client that never reached Redis also goes on.
    let b = l2_client(&srv, &url, "wc-test:kill:", cfg);
    let (status, body) = get(&b, &srv.url("/cache/k0?cache_control=max-age=600")).await;
    assert_eq!(
        (status, body["served"].as_u64()),
        (Some(CacheStatus::Miss), Some(2))
    );
    assert!(b.stats().cache.l2_errors >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_never_answers_costs_one_timeout_then_is_bypassed() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            conns.push(s);
        }
    });
    let srv = server().await;
    let a = l2_client(&srv, &format!("redis://127.0.0.1:{port}"), "wc:", |c| {
        c.cache.l2.timeout_ms = 100;
        c.cache.l2.retry_after_ms = 600_000;
    });
    for i in 0..3 {
        let (status, _) = get(
            &a,
            &srv.url(&format!("/cache/s{i}?cache_control=max-age=60")),
        )
        .await;
        assert_eq!(status, Some(CacheStatus::Miss));
    }
    let s = a.stats().cache;
    assert_eq!(s.l2_errors, 1, "{s:?}");
    // The first read timed out; the first write, the two later reads and writes skip Redis.
    assert_eq!(s.l2_bypassed, 5, "{s:?}");
    held.abort();
}

/// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the test's redis-server: its connections stay
/// open and unanswered, as a hung Redis's do.
fn signal(redis: &Redis, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &redis.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// A request must end even if Redis never answers: the test fails instead of hanging.
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_mins(1), f)
        .await
        .unwrap_or_else(|_| panic!("{what} never ended"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_stops_answering_a_connected_client_is_bypassed_within_the_timeout() {
    let redis = start_redis();
    let srv = server().await;
    let url = srv.url("/cache/hung?cache_control=max-age=600");
    let a = l2_client(&srv, &redis.url(), "wc-test:hung:", |c| {
        c.cache.l2.timeout_ms = 200;
        c.cache.l2.retry_after_ms = 600_000;
    });
    assert_eq!(get(&a, &url).await.0, Some(CacheStatus::Miss));
    stored(&a, 1).await;
    // The connection is made and the entry is in Redis: the next request would be a Redis hit.
    a.forget_cached_in_memory(&url);
    signal(&redis, "-STOP");
    let (status, body) = bounded("a request while Redis is stopped", get(&a, &url)).await;
    let s = a.stats().cache;
    signal(&redis, "-CONT");
    assert_eq!(status, Some(CacheStatus::Miss), "{s:?}");
    assert_eq!(body["served"], 2, "the server answered instead");
    assert_eq!((s.l2_errors, s.l2_hits), (1, 0), "{s:?}");
    // The read timed out; the write of the new answer skipped Redis.
    assert_eq!(s.l2_bypassed, 1, "{s:?}");
    a.forget_cached_in_memory(&url);
    let (status, _) = get(&a, &url).await;
    assert_eq!(status, Some(CacheStatus::Miss));
    let s = a.stats().cache;
    assert_eq!(
        (s.l2_errors, s.l2_bypassed),
        (1, 3),
        "skipped after it failed: {s:?}"
    );
}

/// Reads of a Redis that stopped answering, sent together after the link sat idle for longer
/// than its timeout (nothing in flight for the link's watchdog to watch): each request ends,
/// answered by the server, and each read is counted as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_together_on_a_hung_redis_after_an_idle_spell_all_end_and_count() {
    let redis = start_redis();
    let srv = server().await;
    let a = l2_client(&srv, &redis.url(), "wc-test:hung-all:", |c| {
        c.cache.l2.timeout_ms = 200;
        c.cache.l2.retry_after_ms = 600_000;
    });
    let urls: Vec<String> = (0..4)
        .map(|i| srv.url(&format!("/cache/hung-all{i}?cache_control=max-age=600")))
        .collect();
    for u in &urls {
        assert_eq!(get(&a, u).await.0, Some(CacheStatus::Miss));
    }
    stored(&a, 4).await;
    for u in &urls {
        a.forget_cached_in_memory(u);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    signal(&redis, "-STOP");
    let all = futures_util::future::join_all(urls.iter().map(|u| get(&a, u)));
    let got = bounded("requests while Redis is stopped", all).await;
    let s = a.stats().cache;
    signal(&redis, "-CONT");
    for (status, body) in got {
        assert_eq!(status, Some(CacheStatus::Miss), "{s:?}");
        assert_eq!(body["served"], 2, "the server answered instead");
    }
    assert_eq!((s.l2_errors, s.l2_hits), (4, 0), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_deadline_before_the_l2_timeout_times_the_request_out_and_spares_redis() {
    let redis = start_redis();
    let srv = server().await;
    let url = srv.url("/cache/late?cache_control=max-age=600");
    let a = l2_client(&srv, &redis.url(), "wc-test:late:", |c| {
        c.cache.l2.timeout_ms = 30_000;
    });
    assert_eq!(get(&a, &url).await.0, Some(CacheStatus::Miss));
    stored(&a, 1).await;
    a.forget_cached_in_memory(&url);
    signal(&redis, "-STOP");
    let sent = a
        .get(&url)
        .timeout(std::time::Duration::from_millis(200))
        .send();
    let err = bounded("a request while Redis is stopped", sent)
        .await
        .unwrap_err();
    signal(&redis, "-CONT");
    assert_eq!(err.kind(), wirecore::ErrorKind::TimeoutTotal, "{err}");
    let s = a.stats().cache;
    assert_eq!(
        (s.l2_errors, s.l2_bypassed),
        (0, 0),
        "not Redis's fault: {s:?}"
    );
    // Redis is not skipped: the next request is a hit from it.
    let (status, body) = get(&a, &url).await;
    assert_eq!(status, Some(CacheStatus::Hit));
    assert_eq!(body["served"], 1);
    assert_eq!(a.stats().cache.l2_hits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_writes_what_is_in_flight_then_releases_the_redis_connection() {
    let redis = start_redis();
    let srv = server().await;
    let c = l2_client(&srv, &redis.url(), "wc-test:close:", |_| {});
    get(&c, &srv.url("/cache/c0?cache_control=max-age=600")).await;
    stored(&c, 1).await;
    assert_eq!(redis.connected_clients(), 2, "the cache's and this probe's");
    // A write started just before the close reaches Redis before the connection closes.
    let last = srv.url("/cache/c1?cache_control=max-age=600");
    get(&c, &last).await;
    c.close(std::time::Duration::from_secs(5)).await;
    let port = redis.port;
    wait_until("the closed client's cache connection is closed", || {
        Redis::clients_on(port) == 1
    })
    .await;
    let s = c.stats().cache;
    assert_eq!(s.l2_stores, 2, "{s:?}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("wc-test:close:GET {last}"))
        .query(&mut redis_conn(&redis))
        .unwrap();
    assert!(exists, "the write in flight at the close was made");
    drop(c);
}

#[test]
fn l2_settings_are_checked_naming_the_field() {
    for (json, field) in [
        (
            r#"{"cache": {"l2": {"url": "http://127.0.0.1:6379"}}}"#,
            "cache.l2.url",
        ),
        (
            r#"{"cache": {"l2": {"timeout_ms": 0}}}"#,
            "cache.l2.timeout_ms",
        ),
        (
            r#"{"cache": {"l2": {"max_entry_bytes": 67108865}}}"#,
            "cache.l2.max_entry_bytes",
        ),
        (r#"{"cache": {"l2": {"bogus": 1}}}"#, "cache.l2"),
    ] {
        let e = Config::from_json(json).unwrap_err();
        assert!(e.to_string().contains(field), "{json}: {e}");
    }
    let ok = Config::from_json(
        r#"{"cache": {"enabled": true, "l2": {"url": "redis://127.0.0.1:1/0"}}}"#,
    );
    assert!(ok.is_ok(), "{ok:?}");
}
