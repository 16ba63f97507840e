//! The loopback test server in a child process (this binary re-executed with `--serve`), so
//! its CPU time never lands in the client's getrusage, and a blocking control client for its
//! counters.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use wirecore_testserver::{Counters, Options, TestServer};

/// Runs the server until stdin closes (the `--serve` mode of this binary).
pub fn serve(threads: usize) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("bench-server")
        .enable_all()
        .build()
        .map_err(|e| format!("server runtime: {e}"))?;
    rt.block_on(async {
        let opts = Options {
            request_log_capacity: 0,
            ..Options::default()
        };
        let server = TestServer::start(opts)
            .await
            .map_err(|e| format!("server: {e}"))?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", server.info()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
        drop(server);
        Ok(())
    })
}

/// A running server child; dropping it closes its stdin, which stops it.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    pub http: String,
    pub https: String,
    pub ca_pem: String,
    control: SocketAddr,
}

impl Server {
    /// Starts `exe --serve`, under `taskset -c cpus` when given.
    pub fn spawn(threads: usize, cpus: Option<&str>) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = match cpus {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c).arg(&exe);
                cmd
            }
            None => Command::new(&exe),
        };
        cmd.arg("--serve")
            .arg("--server-threads")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("spawn server: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("server output: {e}"))?;
        let info: Value =
            serde_json::from_str(&line).map_err(|e| format!("server said {line:?}: {e}"))?;
        let field = |k: &str| {
            info.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("server info lacks {k}: {line}"))
        };
        let control: SocketAddr = field("control")?
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("control address: {e}"))?;
        let ca_path = field("ca")?;
        let ca_pem =
            std::fs::read_to_string(&ca_path).map_err(|e| format!("read {ca_path}: {e}"))?;
        Ok(Server {
            http: field("http")?,
            https: field("https")?,
            ca_pem,
            control,
            child,
            stdin,
        })
    }

    /// The server's counters, read on the control port (never counted in them).
    pub fn counters(&self) -> Result<Counters, String> {
        let body = self.control("GET", "/_control/counters")?;
        serde_json::from_str(&body).map_err(|e| format!("counters: {e}"))
    }

    fn control(&self, method: &str, path: &str) -> Result<String, String> {
        let mut s = TcpStream::connect_timeout(&self.control, Duration::from_secs(5))
            .map_err(|e| format!("control connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.control
        )
        .map_err(|e| format!("control write: {e}"))?;
        let mut raw = String::new();
        s.read_to_string(&mut raw)
            .map_err(|e| format!("control read: {e}"))?;
        let (head, body) = raw
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("control reply without a body: {raw:?}"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("control {path}: {head}"));
        }
        Ok(body.to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
