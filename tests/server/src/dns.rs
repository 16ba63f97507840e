//! A loopback DNS responder (UDP and TCP) answering A and AAAA queries from a table.
//!
//! Per name it answers with the configured addresses and TTL, or fails on purpose:
//! SERVFAIL, NXDOMAIN (with an SOA carrying the negative TTL) or no answer at all.
//! Names not in the table get NXDOMAIN. Every query is counted by name.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::conn::Phase;
use crate::stats::lock;

/// How the responder fails queries for a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DnsMode {
    /// Answer SERVFAIL.
    #[serde(rename = "servfail")]
    ServFail,
    /// Answer NXDOMAIN, with an SOA giving the negative-caching TTL.
    #[serde(rename = "nxdomain")]
    NxDomain,
    /// Send nothing back, as a lost packet or dead server would.
    #[serde(rename = "drop")]
    Drop,
}

#[derive(Clone, Debug)]
enum Entry {
    Answer { ips: Vec<IpAddr>, ttl: u32 },
    Fail(DnsMode),
}

#[derive(Debug)]
struct Inner {
    table: Mutex<HashMap<String, Entry>>,
    queries: Mutex<BTreeMap<String, u64>>,
    negative_ttl: AtomicU32,
}

/// The DNS responder of a [`TestServer`](crate::TestServer).
#[derive(Clone, Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

/// Default TTL of the SOA in negative answers, in seconds.
const DEFAULT_NEGATIVE_TTL: u32 = 10;

impl DnsServer {
    /// Binds UDP and TCP on the same ephemeral port of 127.0.0.1 and serves until `phase`'s
    /// sender is dropped.
    pub(crate) async fn start(phase: &watch::Receiver<Phase>) -> io::Result<Self> {
        // The UDP port picked by the kernel may be taken for TCP; retry a few times.
        let mut last_err = None;
        for _ in 0..16 {
            let udp = UdpSocket::bind("127.0.0.1:0").await?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => {
                    let inner = Arc::new(Inner {
                        table: Mutex::new(HashMap::new()),
                        queries: Mutex::new(BTreeMap::new()),
                        negative_ttl: AtomicU32::new(DEFAULT_NEGATIVE_TTL),
                    });
                    tokio::spawn(serve_udp(inner.clone(), udp, phase.clone()));
                    tokio::spawn(serve_tcp(inner.clone(), tcp, phase.clone()));
                    return Ok(Self { addr, inner });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no DNS port")))
    }

    /// The UDP and TCP address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers A/AAAA queries for `name` with `ips` (each query type gets its family).
    pub fn set(&self, name: &str, ips: &[IpAddr], ttl_secs: u32) {
        lock(&self.inner.table).insert(
            normalize(name),
            Entry::Answer {
                ips: ips.to_vec(),
                ttl: ttl_secs,
            },
        );
    }

    /// Fails every query for `name` in the given way.
    pub fn fail(&self, name: &str, mode: DnsMode) {
        lock(&self.inner.table).insert(normalize(name), Entry::Fail(mode));
    }

    /// Forgets `name`: it gets NXDOMAIN again.
    pub fn remove(&self, name: &str) {
        lock(&self.inner.table).remove(&normalize(name));
    }

    /// Sets the TTL of the SOA sent with NXDOMAIN and empty answers. Default: 10 seconds.
    pub fn set_negative_ttl(&self, secs: u32) {
        self.inner.negative_ttl.store(secs, Ordering::Relaxed);
    }

    /// Queries received for `name` (all types) since start or the last reset.
    pub fn queries(&self, name: &str) -> u64 {
        lock(&self.inner.queries)
            .get(&normalize(name))
            .copied()
            .unwrap_or(0)
    }

    /// Queries received per name (lower-case, with trailing dot).
    pub fn all_queries(&self) -> BTreeMap<String, u64> {
        lock(&self.inner.queries).clone()
    }

    /// Zeroes the query counts; the table is kept.
    pub fn reset_queries(&self) {
        lock(&self.inner.queries).clear();
    }

    /// Empties the table and zeroes the query counts.
    pub fn clear(&self) {
        lock(&self.inner.table).clear();
        self.reset_queries();
    }
}

/// Lower-cases and makes fully qualified: `Svc.Test` → `svc.test.`.
fn normalize(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

async fn serve_udp(inner: Arc<Inner>, udp: UdpSocket, mut phase: watch::Receiver<Phase>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, peer) = tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            changed = phase.changed() => if changed.is_err() { return } else { continue },
        };
        if let Some(reply) = inner.answer(&buf[..len]) {
            let _ = udp.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(inner: Arc<Inner>, tcp: TcpListener, mut phase: watch::Receiver<Phase>) {
    loop {
        let stream = tokio::select! {
            r = tcp.accept() => match r {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
            changed = phase.changed() => if changed.is_err() { return } else { continue },
        };
        let inner = inner.clone();
        let mut phase = phase.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = serve_tcp_conn(&inner, stream) => {}
                _ = phase.wait_for(|_| false) => {}
            }
        });
    }
}

/// Serves length-prefixed messages on one TCP connection until it closes.
async fn serve_tcp_conn(inner: &Inner, mut stream: TcpStream) -> io::Result<()> {
    loop {
        let len = stream.read_u16().await?;
        let mut msg = vec![0u8; usize::from(len)];
        stream.read_exact(&mut msg).await?;
        if let Some(reply) = inner.answer(&msg) {
            let len = u16::try_from(reply.len()).map_err(io::Error::other)?;
            stream.write_u16(len).await?;
            stream.write_all(&reply).await?;
        }
    }
}

impl Inner {
    /// The wire reply to one wire query, or `None` to stay silent.
    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(query).ok()?;
        if req.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.metadata.authoritative = true;
        resp.add_queries(req.queries.iter().cloned());
        let Some(q) = req.queries.first() else {
            resp.metadata.response_code = ResponseCode::FormErr;
            return resp.to_vec().ok();
        };
        if req.metadata.op_code != OpCode::Query {
            resp.metadata.response_code = ResponseCode::NotImp;
            return resp.to_vec().ok();
        }
        let name = normalize(&q.name.to_ascii());
        *lock(&self.queries).entry(name.clone()).or_default() += 1;
        let entry = lock(&self.table).get(&name).cloned();
        match entry {
            Some(Entry::Fail(DnsMode::Drop)) => return None,
            Some(Entry::Fail(DnsMode::ServFail)) => {
                resp.metadata.response_code = ResponseCode::ServFail;
            }
            None | Some(Entry::Fail(DnsMode::NxDomain)) => {
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.add_authority(self.soa(&q.name));
            }
            Some(Entry::Answer { ips, ttl }) => {
                let records: Vec<Record> = ips
                    .iter()
                    .filter_map(|ip| match (ip, q.query_type) {
                        (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                        (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                        _ => None,
                    })
                    .map(|rdata| Record::from_rdata(q.name.clone(), ttl, rdata))
                    .collect();
                if records.is_empty() {
                    // NODATA: the name exists, with no records of this type.
                    resp.add_authority(self.soa(&q.name));
                } else {
                    resp.add_answers(records);
                }
            }
        }
        resp.to_vec().ok()
    }

    /// An SOA for the zone above `name`, whose TTL and minimum are the negative TTL.
    fn soa(&self, name: &Name) -> Record {
        let ttl = self.negative_ttl.load(Ordering::Relaxed);
        let zone = if name.num_labels() > 1 {
            name.base_name()
        } else {
            Name::root()
        };
        let mname = Name::from_ascii("ns.wirecore.test.").unwrap_or_else(|_| Name::root());
        let rname = Name::from_ascii("hostmaster.wirecore.test.").unwrap_or_else(|_| Name::root());
        let soa = SOA::new(mname, rname, 1, 3600, 600, 86400, ttl);
        Record::from_rdata(zone, ttl, RData::SOA(soa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn query(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    fn inner() -> Inner {
        Inner {
            table: Mutex::new(HashMap::new()),
            queries: Mutex::new(BTreeMap::new()),
            negative_ttl: AtomicU32::new(7),
        }
    }

    #[test]
    fn answers_each_family_from_the_table() {
        let inner = inner();
        lock(&inner.table).insert(
            "svc.test.".into(),
            Entry::Answer {
                ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                ttl: 30,
            },
        );
        let a =
            Message::from_vec(&inner.answer(&query("SVC.test.", RecordType::A)).unwrap()).unwrap();
        assert_eq!(a.answers.len(), 1);
        assert_eq!(a.answers[0].ttl, 30);
        let aaaa = Message::from_vec(&inner.answer(&query("svc.test.", RecordType::AAAA)).unwrap())
            .unwrap();
        assert_eq!(aaaa.answers.len(), 1);
        assert_eq!(lock(&inner.queries).get("svc.test."), Some(&2));
    }

    #[test]
    fn unknown_names_get_nxdomain_with_soa() {
        let inner = inner();
        let r =
            Message::from_vec(&inner.answer(&query("nope.test.", RecordType::A)).unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(r.authorities[0].ttl, 7);
    }
}
