//! Benchmarks of the response cache (criterion): a memory hit through the whole client path
//! (metrics, redirect loop, lookup, the stored body read back), a loopback GET without a cache
//! for scale, 1,000 concurrent identical GETs coalesced into one upstream request, and a hit in
//! the Redis second level next to a plain Redis GET of the same bytes (needs `redis-server`,
//! started on a private port and stopped by its pid; without it those lines are skipped).
//!
//! `cargo bench -p wirecore --bench cache`; with `WIRECORE_BENCH_REPORT=<file>` (`make bench`)
//! it also writes a markdown summary measured in interleaved rounds, with the load average
//! (the figures quoted in issue 14).

use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::Criterion;
use tokio::runtime::Runtime;
use tokio::time::Instant;
use wirecore::{Client, Config};
use wirecore_testserver::{Options, TestServer};

/// The test server waits this long before each answer of the coalescing rounds.
const HERD_DELAY_MS: u64 = 20;

/// Callers per coalescing round.
const HERD: usize = 1000;

/// Coalescing rounds of the summary.
const HERD_ROUNDS: u32 = 10;

fn client(cache: bool) -> Client {
    let mut c = Config::default();
    c.retry.enabled = false;
    c.cache.enabled = cache;
    Client::from_config(c).expect("client")
}

async fn get_n(c: &Client, url: &str, n: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let r = c.get(url).send().await.expect("request");
        black_box(r.bytes().await.expect("body"));
    }
    t.elapsed()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// One round of the herd: `HERD` concurrent identical GETs of a URL never asked before.
/// Returns the wall time and how many requests reached the server.
fn herd_round(rt: &Runtime, srv: &TestServer, c: &Client, nth: u64) -> (Duration, u64) {
    let url = srv.url(&format!(
        "/cache/herd{nth}?cache_control=max-age=60&delay_ms={HERD_DELAY_MS}"
    ));
    let before = srv.counters().requests;
    let wall = rt.block_on(async {
        let t = Instant::now();
        let tasks: Vec<_> = (0..HERD)
            .map(|_| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move {
                    let r = c.get(&url).send().await.expect("request");
                    black_box(r.bytes().await.expect("body"));
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        t.elapsed()
    });
    (wall, srv.counters().requests - before)
}

/// One GET of the same kind of URL, never asked before, alone: the round's floor.
fn lone_miss(rt: &Runtime, srv: &TestServer, c: &Client, nth: u64) -> Duration {
    let url = srv.url(&format!(
        "/cache/lone{nth}?cache_control=max-age=60&delay_ms={HERD_DELAY_MS}"
    ));
    rt.block_on(get_n(c, &url, 1))
}

fn main() {
    let mut crit = Criterion::default().configure_from_args();
    let load_before = load_average();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let srv = rt
        .block_on(TestServer::start(Options {
            request_log_capacity: 0,
            ..Options::default()
        }))
        .expect("test server");
    let fresh = srv.url("/cache/bench?cache_control=max-age=3600");
    let cached = client(true);
    rt.block_on(get_n(&cached, &fresh, 1));
    let plain = client(false);
    let bytes = srv.url("/bytes/1024");
    rt.block_on(get_n(&plain, &bytes, 1));

    let mut group = crit.benchmark_group("cache");
    group.bench_function("memory_hit", |b| {
        b.iter_custom(|n| rt.block_on(get_n(&cached, &fresh, n)));
    });
    group.bench_function("loopback_get_1k_uncached", |b| {
        b.iter_custom(|n| rt.block_on(get_n(&plain, &bytes, n)));
    });
    group.sample_size(10);
    // A new URL each round: every round is one miss shared by 1,000 callers.
    let round = AtomicU64::new(0);
    let upstream = AtomicU64::new(0);
    group.bench_function("coalesce_1000_concurrent_gets", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let (wall, sent) = herd_round(&rt, &srv, &cached, round.fetch_add(1, Relaxed));
                total += wall;
                upstream.fetch_add(sent, Relaxed);
            }
            total
        });
    });
    group.finish();
    let redis = RedisBench::start(&rt, &srv);
    if let Some(r) = &redis {
        r.criterion(&mut crit, &rt);
    }
    let rounds = round.load(Relaxed).max(1);
    println!(
        "coalescing: {} upstream requests for {} rounds of 1,000 identical GETs ({:.2} per round); cache stats: {:?}",
        upstream.load(Relaxed),
        rounds,
        upstream.load(Relaxed) as f64 / rounds as f64,
        cached.stats().cache
    );
    crit.final_summary();

    let Ok(path) = std::env::var("WIRECORE_BENCH_REPORT") else {
        return;
    };
    // Interleaved rounds, so drift on a shared machine hits both sides of each ratio alike.
    let (mut hit, mut uncached, mut fastest) = (Duration::ZERO, Duration::ZERO, Duration::MAX);
    for _ in 0..10 {
        let round = rt.block_on(get_n(&cached, &fresh, 10_000));
        hit += round;
        fastest = fastest.min(round);
        uncached += rt.block_on(get_n(&plain, &bytes, 1_000));
    }
    let hit_us = hit.as_secs_f64() * 1e6 / 100_000.0;
    let fastest_us = fastest.as_secs_f64() * 1e6 / 10_000.0;
    let uncached_us = uncached.as_secs_f64() * 1e6 / 10_000.0;
    let (mut herd_wall, mut lone_wall, mut herd_sent) = (Duration::ZERO, Duration::ZERO, 0);
    let mut herd_max_sent = 0;
    for _ in 0..HERD_ROUNDS {
        let nth = round.fetch_add(1, Relaxed);
        let (wall, sent) = herd_round(&rt, &srv, &cached, nth);
        herd_wall += wall;
        herd_sent += sent;
        herd_max_sent = herd_max_sent.max(sent);
        lone_wall += lone_miss(&rt, &srv, &cached, nth);
    }
    let herd_ms = herd_wall.as_secs_f64() * 1e3 / f64::from(HERD_ROUNDS);
    let lone_ms = lone_wall.as_secs_f64() * 1e3 / f64::from(HERD_ROUNDS);
    let waiter_us = (herd_ms - lone_ms) * 1e3 / HERD as f64;
    let redis_rows = redis.as_ref().map_or_else(
        || "| Redis hit vs Redis GET | skipped: redis-server did not start | ≤ 1.2× |\n".to_owned(),
        |r| {
            let (l2, get) = r.interleaved(&rt, 10, 1_000);
            let (l2_median, get_median) = r.alternating(&rt, 10_000);
            format!(
                "| Redis hit (a stored URL this client has not read: lookup, Redis GET, decode, memory refilled) | {l2:.1} µs | |\n\
                 | plain Redis GET of the same entries' bytes (redis crate, ConnectionManager) | {get:.1} µs | |\n\
                 | Redis hit / Redis GET | {:.2}× | ≤ 1.2× |\n\
                 | Redis hit / Redis GET, medians of 10,000 of each, one after the other | {l2_median:.1} / {get_median:.1} µs = {:.2}× | ≤ 1.2× |\n",
                l2 / get,
                l2_median / get_median
            )
        },
    );
    let report = format!(
        "# Response cache benchmarks (issue 14)\n\n\
         Command: `make bench` (`cargo bench -p wirecore --bench cache`), release build, {} CPUs; \
         load average {load_before} at the start, {} at the end of the summary rounds.\n\n\
         | measure | value | target |\n| --- | --- | --- |\n\
         | memory hit: GET through the whole client path, body read | {hit_us:.2} µs | ≤ 2 µs |\n\
         | memory hit, the fastest of the 10 rounds (the least disturbed by other load) | {fastest_us:.2} µs | ≤ 2 µs |\n\
         | GET /bytes/1024 over loopback, no cache (for scale) | {uncached_us:.1} µs | |\n\
         {redis_rows}\
         | coalescing: requests reaching the server per round of {HERD} identical GETs | {:.2} (most in a round: {herd_max_sent}) | 1 |\n\
         | coalescing: wall time of a round (the server waits {HERD_DELAY_MS} ms) | {herd_ms:.1} ms | |\n\
         | one lone GET of the same endpoint | {lone_ms:.1} ms | |\n\
         | per-waiter cost: (round − lone GET) / {HERD} | {waiter_us:.2} µs | |\n\n\
         Memory hits: 10 rounds of 10,000 sequential GETs interleaved with rounds of 1,000 \
         uncached GETs. Redis: {REDIS_URLS} URLs stored up front; each hit reads one its client \
         has not read (memory does not hold it; a new client after {REDIS_URLS}), each plain GET \
         the key the last hit read; 10 interleaved rounds of 1,000 each, then 10,000 of each timed \
         one by one, a Redis hit and a plain GET in turn (medians: a shared machine's spikes \
         move means more than medians). Coalescing: {HERD_ROUNDS} \
         rounds, each on a new URL, each followed by one lone GET of another new URL; the test \
         server runs in this process on the same runtime. Criterion's own statistics are printed \
         above the summary when run.\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average(),
        herd_sent as f64 / f64::from(HERD_ROUNDS),
    );
    std::fs::write(&path, &report).expect("write report");
    println!("{report}");
}

/// A redis-server on a private port, stopped (by its pid) when dropped.
struct RedisServer(std::process::Child, u16);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<RedisServer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let server = RedisServer(child, port);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Distinct URLs stored in Redis before the Redis benches; each Redis hit reads one that its
/// client has not read before.
const REDIS_URLS: usize = 20_000;

/// A Redis hit as a user meets it, through the whole client path: a URL whose entry is in
/// Redis and not in this client's memory (a reader client reads each of `REDIS_URLS` stored
/// URLs once, then a new reader takes over; nothing is forgotten between hits), so the entry is
/// read from Redis, decoded and memory refilled; next to a plain GET of the same key's bytes on
/// the same kind of connection: issue 14 asks for at most 1.2 times the plain GET.
struct RedisBench {
    /// The reader's config: the default memory bound (`cache.max_bytes`, 64 MiB), which
    /// `REDIS_URLS` entries stay well under.
    cfg: Config,
    reader: RefCell<Client>,
    /// The next URL the reader has not read; `REDIS_URLS`: a new reader is due.
    next: Cell<usize>,
    /// Redis hits of readers no longer in use, and untimed warm-up hits of all readers.
    retired_hits: Cell<u64>,
    warmups: Cell<u64>,
    /// A stored URL outside `urls`, read once by each new reader (untimed) so its Redis
    /// connection is up before the first timed hit.
    warm_url: String,
    urls: Vec<String>,
    keys: Vec<String>,
    conn: redis::aio::ConnectionManager,
    _server: RedisServer,
}

impl RedisBench {
    fn start(rt: &Runtime, srv: &TestServer) -> Option<RedisBench> {
        let Some(server) = start_redis() else {
            println!("redis-server did not start: the Redis benches are skipped");
            return None;
        };
        let redis_url = format!("redis://127.0.0.1:{}", server.1);
        let mut cfg = Config::default();
        cfg.retry.enabled = false;
        cfg.cache.enabled = true;
        cfg.cache.l2.url.clone_from(&redis_url);
        // A loaded machine must not turn a slow Redis answer into a bypass mid-run.
        cfg.cache.l2.timeout_ms = 2_000;
        // Paths of one width, each asked once of the test server: every stored body and key
        // is the same size (the body names the path and its request count, 1).
        let url = |i: usize| {
            srv.url(&format!(
                "/cache/l2bench/{i:05}?cache_control=max-age=3600&etag=b"
            ))
        };
        let warm_url = url(REDIS_URLS);
        let urls: Vec<String> = (0..REDIS_URLS).map(url).collect();
        let writer = Client::from_config(cfg.clone()).expect("client");
        rt.block_on(async {
            // Batches under the L2's 64 writes in flight, so no write is dropped.
            let mut sent = 0;
            for batch in urls.chunks(32).chain([std::slice::from_ref(&warm_url)]) {
                for u in batch {
                    get_n(&writer, u, 1).await;
                }
                sent += batch.len() as u64;
                let t = Instant::now();
                while writer.stats().cache.l2_stores < sent {
                    assert!(
                        t.elapsed() < Duration::from_secs(10),
                        "the entries reached Redis"
                    );
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        });
        let s = writer.stats().cache;
        assert_eq!(
            s.l2_stores,
            REDIS_URLS as u64 + 1,
            "every entry reached Redis ({s:?})"
        );
        drop(writer);
        let keys = urls
            .iter()
            .map(|u| format!("wirecore:cache:GET {u}"))
            .collect();
        let conn = rt
            .block_on(async {
                redis::Client::open(redis_url.as_str())?
                    .get_connection_manager()
                    .await
            })
            .expect("redis connection");
        let reader = Client::from_config(cfg.clone()).expect("client");
        Some(RedisBench {
            cfg,
            reader: RefCell::new(reader),
            next: Cell::new(REDIS_URLS),
            retired_hits: Cell::new(0),
            warmups: Cell::new(0),
            warm_url,
            urls,
            keys,
            conn,
            _server: server,
        })
    }

    /// The reader and the index of a URL it has not read; a new reader (warmed up, untimed)
    /// once the old one has read them all.
    async fn unread(&self) -> (Client, usize) {
        let i = self.next.get();
        if i < REDIS_URLS {
            self.next.set(i + 1);
            return (self.reader.borrow().clone(), i);
        }
        let fresh = Client::from_config(self.cfg.clone()).expect("client");
        let old = self.reader.replace(fresh.clone());
        self.retired_hits
            .set(self.retired_hits.get() + old.stats().cache.l2_hits);
        drop(old);
        get_n(&fresh, &self.warm_url, 1).await;
        self.warmups.set(self.warmups.get() + 1);
        self.next.set(1);
        (fresh, 0)
    }

    /// Redis hits so far, warm-ups left out.
    fn timed_hits(&self) -> u64 {
        self.retired_hits.get() + self.reader.borrow().stats().cache.l2_hits - self.warmups.get()
    }

    /// `n` Redis hits, each timed on its own, each of a URL its client has not read.
    async fn l2_hits(&self, n: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let (client, i) = self.unread().await;
            let url = &self.urls[i];
            let t = Instant::now();
            let r = client.get(url).send().await.expect("request");
            black_box(r.bytes().await.expect("body"));
            total += t.elapsed();
        }
        total
    }

    /// `n` plain GETs, each timed on its own as `l2_hits` times a hit, each of the key the
    /// last hit read (the same bytes).
    async fn plain_gets(&self, n: u64) -> Duration {
        let mut conn = self.conn.clone();
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let key = &self.keys[self.next.get().clamp(1, REDIS_URLS) - 1];
            let t = Instant::now();
            let v: Vec<u8> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .expect("GET");
            total += t.elapsed();
            assert!(!v.is_empty(), "the entry is in Redis");
            black_box(v);
        }
        total
    }

    fn criterion(&self, crit: &mut Criterion, rt: &Runtime) {
        let mut group = crit.benchmark_group("cache");
        group.bench_function("redis_hit", |b| {
            b.iter_custom(|n| rt.block_on(self.l2_hits(n)));
        });
        group.bench_function("redis_plain_get", |b| {
            b.iter_custom(|n| rt.block_on(self.plain_gets(n)));
        });
        group.finish();
        let s = self.reader.borrow().stats().cache;
        println!(
            "redis: {} timed hits; the last reader's l2_hits {} l2_misses {} l2_errors {} l2_bypassed {} (every GET should be an l2 hit), memory {} entries, {} bytes",
            self.timed_hits(),
            s.l2_hits,
            s.l2_misses,
            s.l2_errors,
            s.l2_bypassed,
            s.l1_entries,
            s.l1_bytes
        );
    }

    /// Median microseconds of a Redis hit and of a plain GET, `n` of each timed one by one in
    /// turn.
    fn alternating(&self, rt: &Runtime, n: usize) -> (f64, f64) {
        let (mut l2, mut get) = (Vec::with_capacity(n), Vec::with_capacity(n));
        rt.block_on(async {
            for _ in 0..n {
                l2.push(self.l2_hits(1).await);
                get.push(self.plain_gets(1).await);
            }
        });
        let median = |v: &mut Vec<Duration>| {
            v.sort_unstable();
            v[v.len() / 2].as_secs_f64() * 1e6
        };
        (median(&mut l2), median(&mut get))
    }

    /// Microseconds per Redis hit and per plain GET over `rounds` interleaved rounds of `n`.
    fn interleaved(&self, rt: &Runtime, rounds: u32, n: u64) -> (f64, f64) {
        let before = self.timed_hits();
        let (mut l2, mut get) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            l2 += rt.block_on(self.l2_hits(n));
            get += rt.block_on(self.plain_gets(n));
        }
        assert_eq!(
            self.timed_hits() - before,
            u64::from(rounds) * n,
            "every timed GET was a Redis hit"
        );
        let per = |d: Duration| d.as_secs_f64() * 1e6 / (f64::from(rounds) * n as f64);
        (per(l2), per(get))
    }
}
