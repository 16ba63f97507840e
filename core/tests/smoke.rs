mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let srv = server().await;
    let c = client(&srv);
    let r = c.get(&srv.url("/bytes/1000")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1000);
    let r = c.get(&srv.tls_url("/json")).send().await.unwrap();
    println!("{:?} {:?}", r.version(), r.timings());
    let t = r.text().await.unwrap();
    println!("{t}");
    let r = c.get(&srv.url("/gzip")).send().await.unwrap();
    println!("{}", r.text().await.unwrap().len());
    println!("{}", c.prometheus());
    println!("{}", c.diagnostics());
}
