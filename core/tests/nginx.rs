//! Against real nginx (installed by `make setup`), started on private loopback ports with a
//! generated config and certificate, stopped by its pid: h1 and h2 over TLS, gzip, keep-alive.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use support::free_port;
use wirecore::{Client, Config, Version};

struct Nginx {
    child: Child,
    http: u16,
    https: u16,
    ca_pem: String,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nginx_bin() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx is not installed: run `make setup`");
}

async fn start() -> Nginx {
    let dir = std::env::temp_dir().join(format!(
        "wirecore-nginx-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    let doc = format!(
        "{{\"items\":[{}]}}",
        (0..400)
            .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\"}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    std::fs::write(dir.join("www/data.json"), &doc).unwrap();
    std::fs::write(dir.join("www/1k"), vec![b'x'; 1024]).unwrap();
    let (http, https) = (free_port(), free_port());
    let d = dir.display();
    let conf = format!(
        "user root;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;\n\
           types {{ application/json json; }}\n  default_type application/octet-stream;\n\
           gzip on; gzip_types application/json; gzip_min_length 100;\n  keepalive_requests 10000;\n\
           server {{\n    listen 127.0.0.1:{http};\n    listen 127.0.0.1:{https} ssl http2;\n\
             ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;\n    root {d}/www;\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx_bin())
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nginx");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", https)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Nginx {
        child,
        http,
        https,
        ca_pem: ca.pem(),
        dir,
    }
}

fn client(n: &Nginx) -> Client {
    let mut c = Config::default();
    c.tls.extra_ca_pem.push(n.ca_pem.clone());
    Client::from_config(c).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h1_keepalive_and_gzip() {
    let nginx = start().await;
    let c = client(&nginx);
    for _ in 0..50 {
        let r = c
            .get(&format!("http://127.0.0.1:{}/1k", nginx.http))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), Version::HTTP_11);
        assert_eq!(r.bytes().await.unwrap().len(), 1024);
    }
    let r = c
        .get(&format!("http://127.0.0.1:{}/data.json", nginx.http))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 400);
    let s = c.stats();
    assert_eq!(s.pool.connects, 1, "keep-alive reuse: {:?}", s.pool);
    // 50 x 1 KiB arrive as is; the ~12 KiB JSON arrives gzipped to a fraction.
    assert!(
        s.bytes_decoded > s.bytes_received + 8_000,
        "nginx gzipped the JSON: {} decoded from {} received",
        s.bytes_decoded,
        s.bytes_received
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h2_over_tls_multiplexes() {
    let nginx = start().await;
    let c = client(&nginx);
    let url = format!("https://localhost:{}/data.json", nginx.https);
    let all = (0..50).map(|_| {
        let c = c.clone();
        let url = url.clone();
        async move {
            let r = c.get(&url).send().await?;
            assert_eq!(r.version(), Version::HTTP_2);
            r.json::<serde_json::Value>().await
        }
    });
    for r in futures_util::future::join_all(all).await {
        assert_eq!(r.unwrap()["items"].as_array().unwrap().len(), 400);
    }
    assert_eq!(c.stats().pool.connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h1_over_tls_when_h2_is_off() {
    let nginx = start().await;
    let mut cfg = Config::default();
    cfg.tls.extra_ca_pem.push(nginx.ca_pem.clone());
    cfg.http2.enabled = false;
    let c = Client::from_config(cfg).unwrap();
    let r = c
        .get(&format!("https://localhost:{}/1k", nginx.https))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.bytes().await.unwrap().len(), 1024);
}
