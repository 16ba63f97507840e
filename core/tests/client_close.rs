//! A closed client still held by its owner (a handle a garbage collector has not dropped yet)
//! ends its engine tasks at close, not when it is dropped. Alone in its binary: it counts the
//! runtime's alive tasks.

mod support;

use std::time::Duration;

use support::*;
use tokio::runtime::Handle;

fn alive() -> usize {
    Handle::current().metrics().num_alive_tasks()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_clients_end_their_tasks_before_they_are_dropped() {
    let srv = server().await;
    let (h1, h2) = (srv.url("/bytes/64"), srv.tls_url("/bytes/64"));
    // The resolver and TLS roots are process-wide: set them up first.
    {
        let c = client(&srv);
        get_all(&c, &h1).await;
        get_all(&c, &h2).await;
        c.close(Duration::from_secs(1)).await;
    }
    srv.wait_for(Duration::from_secs(5), |k| k.connections_active == 0)
        .await;
    let base = settle(Duration::from_millis(200), alive, |n| n == 0).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        let c = client(&srv);
        get_all(&c, &h1).await;
        get_all(&c, &h2).await;
        assert_eq!(c.stats().pool.idle, 2);
        c.close(Duration::from_secs(1)).await;
        held.push(c);
    }
    srv.wait_for(Duration::from_secs(5), |k| k.connections_active == 0)
        .await;
    let n = settle(Duration::from_secs(5), alive, |n| n <= base).await;
    assert_eq!(
        n, base,
        "{n} tasks alive with 20 closed clients held, {base} before"
    );
    // Still usable as closed clients: calls fail with `closed`, stats work.
    for c in &held {
        let e = c.get(&h1).send().await.expect_err("closed");
        assert_eq!(e.kind(), wirecore::ErrorKind::Closed, "{e}");
        let s = c.stats();
        assert_eq!(s.pool.idle, 0);
    }
    drop(held);
}
