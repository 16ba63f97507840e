//! A client dropped without `close()` gives back every socket and ends its tasks. Alone in its
//! binary: it counts the process's open file descriptors.

mod support;

use std::time::Duration;

use support::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_clients_close_their_connections() {
    let srv = server().await;
    let (h1, h2) = (srv.url("/bytes/64"), srv.tls_url("/bytes/64"));
    // The engine's runtime, resolver and TLS roots are process-wide: set them up first.
    {
        let c = client(&srv);
        get_all(&c, &h1).await;
        get_all(&c, &h2).await;
        c.close(Duration::from_secs(1)).await;
    }
    srv.wait_for(Duration::from_secs(5), |k| k.connections_active == 0)
        .await;
    let base = open_fds();
    for _ in 0..200 {
        let c = client(&srv);
        get_all(&c, &h1).await;
        get_all(&c, &h2).await;
        assert_eq!(c.stats().pool.idle, 2);
        drop(c);
    }
    let n = settle(Duration::from_secs(2), open_fds, |n| n <= base + 5).await;
    assert!(
        n <= base + 5,
        "{n} fds open after dropping 200 clients, {base} before"
    );
    let k = srv
        .wait_for(Duration::from_secs(5), |k| k.connections_active == 0)
        .await;
    assert_eq!(k.connections_active, 0, "{k:?}");
    assert_eq!(k.connections_accepted, 2 + 400, "{k:?}");
}
