//! A real redis-server (installed by `make setup`) on a private loopback port, persistence off,
//! stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Redis {
    pub child: Child,
    pub port: u16,
}

impl Redis {
    /// `connected_clients` from Redis's `INFO clients`, asked on a connection of its own
    /// (counted).
    pub fn connected_clients(&self) -> u32 {
        Self::clients_on(self.port)
    }

    /// [`Redis::connected_clients`] of the Redis on `port`.
    pub fn clients_on(port: u16) -> u32 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(b"*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n")
            .expect("write");
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("connected_clients:") || !text.ends_with("\r\n") {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "redis closed the connection");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .expect("connected_clients");
        line.trim().parse().expect("a number")
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_redis() -> Redis {
    let port = super::free_port();
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is not installed: run `make setup`");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Redis { child, port };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not start on port {port}");
}
