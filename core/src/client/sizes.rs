//! The sizes of the request path's futures (issue 15): every layer moves its callee's future by
//! value, so their sizes are the bytes copied per request. `cargo test -p wirecore --lib
//! future_sizes -- --nocapture` prints them; the bounds catch a layer that grows by kilobytes.

use std::mem::size_of_val;

use http::{HeaderMap, Method};
use tokio::time::Instant;

use super::Client;
use super::send::Opts;
use crate::body::RequestBody;
use crate::request::{CacheMode, PhaseTimeouts, Request};

#[test]
#[expect(clippy::print_stdout, reason = "the probe prints the sizes")]
fn future_sizes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = Client::new().expect("client");
        let url = "http://127.0.0.1:9/x";
        let req = || Request::new(Method::GET, url).expect("request");
        let mut sizes = Vec::new();
        let execute = client.execute(req());
        sizes.push(("execute", size_of_val(&execute)));
        drop(execute);
        let start = Instant::now();
        let run = client.run(req(), start, None, false);
        sizes.push(("run", size_of_val(&run)));
        drop(run);
        let r = req();
        let headers = HeaderMap::new();
        let opts = Opts {
            idempotent: None,
            rate_limit_key: None,
            balance_key: None,
            deadline: None,
            start,
            phases: PhaseTimeouts::default(),
            defaults: &client.inner.default_headers,
        };
        let cached = client.send_cached(
            &r.method,
            &r.uri,
            &headers,
            RequestBody::empty(),
            &opts,
            CacheMode::Default,
            false,
        );
        sizes.push(("send_cached", size_of_val(&cached)));
        drop(cached);
        let resilient =
            client.send_resilient(&r.method, &r.uri, &headers, RequestBody::empty(), &opts);
        sizes.push(("send_resilient", size_of_val(&resilient)));
        drop(resilient);
        let (route, _using) = client.route_in_use(&r.uri).expect("route");
        let once = client.send_once(
            &route,
            &r.method,
            &r.uri,
            &headers,
            RequestBody::empty(),
            &opts,
        );
        sizes.push(("send_once", size_of_val(&once)));
        drop(once);
        let urgency = || 3;
        let acquire =
            client
                .inner
                .pool
                .acquire_at(&route.host, None, &urgency, PhaseTimeouts::default());
        sizes.push(("acquire_at", size_of_val(&acquire)));
        drop(acquire);
        let p = &client.inner.policies;
        let (op, key) = (&*route.policy, &route.origin.key);
        let trivial = || async {
            Err::<crate::Response, _>(crate::Error::new(crate::ErrorKind::Internal, "x"))
        };
        let attempt = p.attempt(op, key, None, None, trivial);
        sizes.push(("policies.attempt(trivial)", size_of_val(&attempt)));
        drop(attempt);
        let run = p.run(op, true, true, None, start, trivial);
        sizes.push(("policies.run(trivial)", size_of_val(&run)));
        drop(run);
        let prep = client.prepare(&route.origin, &headers, &headers, RequestBody::empty());
        sizes.push(("prepare", size_of_val(&prep)));
        drop(prep);
        let l2 = client.l2_read("k", None);
        sizes.push(("l2_read", size_of_val(&l2)));
        drop(l2);
        sizes.push(("Request", std::mem::size_of::<Request>()));
        sizes.push(("Response", std::mem::size_of::<crate::Response>()));
        sizes.push(("Body", std::mem::size_of::<crate::body::Body>()));
        sizes.push(("Error", std::mem::size_of::<crate::Error>()));
        sizes.push((
            "RequestOptions",
            std::mem::size_of::<crate::request::RequestOptions>(),
        ));
        sizes.push(("Sleep", std::mem::size_of::<tokio::time::Sleep>()));
        for (name, n) in &sizes {
            println!("future size: {name:>25} {n:>6} bytes");
        }
        let size = |name: &str| sizes.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
        // Without a cache the redirect loop does not hold the cache's states, and an attempt
        // holds no room for the rate limiter's or the concurrency limit's wait.
        assert!(size("run") < size("send_cached"), "{sizes:?}");
        assert!(size("policies.attempt(trivial)") < Some(512), "{sizes:?}");
    });
}
