//! nginx (installed by `make setup`) on private loopback ports for the suites that compare
//! with a real server: HTTP/1.1 on one port, TLS with h2 by ALPN on another, a generated CA.
//! Serves `/1k` (1 KiB of `x`) and `/data.json` (about 12 KiB, gzipped on request).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running nginx, one worker, stopped (by its own pid) and its directory removed on drop.
#[derive(Debug)]
pub struct TestNginx {
    child: Child,
    http: u16,
    https: u16,
    ca_pem: String,
    dir: PathBuf,
}

impl Drop for TestNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestNginx {
    /// Starts nginx and waits (at most 10 s) until its TLS port accepts.
    ///
    /// # Errors
    /// nginx is not installed, or did not start (its `error.log` is quoted).
    pub fn start() -> io::Result<TestNginx> {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| io::Error::other("nginx is not installed: run `make setup`"))?;
        // A port picked free may be taken before nginx binds it: try fresh ones.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(n) => return Ok(n),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("nginx did not start")))
    }

    fn try_start(bin: &Path) -> io::Result<TestNginx> {
        let (http, https) = (free_port()?, free_port()?);
        let dir = std::env::temp_dir().join(format!(
            "wirecore-nginx-{}-{http}-{https}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("www"))?;
        let ca_pem = write_files(&dir)?;
        let d = dir.display();
        let conf = format!(
            "user root;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\ndaemon off;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc; uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;\n\
               types {{ application/json json; }}\n  default_type application/octet-stream;\n\
               gzip on; gzip_types application/json; gzip_min_length 100;\n  keepalive_requests 100000;\n\
               server {{\n    listen 127.0.0.1:{http};\n    listen 127.0.0.1:{https} ssl http2;\n\
                 ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;\n    root {d}/www;\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf)?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut n = TestNginx {
            child,
            http,
            https,
            ca_pem,
            dir,
        };
        // At most 500 tries 20 ms apart: 10 s.
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", https)).is_ok() {
                return Ok(n);
            }
            if n.child.try_wait()?.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(n.dir.join("error.log")).unwrap_or_default();
        Err(io::Error::other(format!(
            "nginx did not start: {}",
            log.trim()
        )))
    }

    /// The plain HTTP/1.1 port.
    pub fn http_port(&self) -> u16 {
        self.http
    }

    /// The TLS port (h2 and http/1.1 by ALPN); its certificate is for `localhost`.
    pub fn https_port(&self) -> u16 {
        self.https
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// `https://localhost:PORT{path}`; trust [`TestNginx::ca_pem`] (or the file
    /// [`TestNginx::ca_path`]) to use it.
    pub fn tls_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https)
    }

    /// The CA that signed the server certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The same CA as a file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Certificate, key, CA and the served files; returns the CA's PEM.
fn write_files(dir: &Path) -> io::Result<String> {
    let err = io::Error::other;
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let leaf_key = rcgen::KeyPair::generate().map_err(err)?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(err)?
        .signed_by(&leaf_key, &rcgen::Issuer::new(ca_params, ca_key))
        .map_err(err)?;
    std::fs::write(dir.join("cert.pem"), leaf.pem())?;
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem())?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    let doc = format!(
        "{{\"items\":[{}]}}",
        (0..400)
            .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\"}}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    std::fs::write(dir.join("www/data.json"), doc)?;
    std::fs::write(dir.join("www/1k"), vec![b'x'; 1024])?;
    Ok(ca.pem())
}
