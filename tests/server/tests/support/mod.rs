//! A bare hyper client for the server's own tests: one connection, HTTP/1.1 or HTTP/2,
//! plain or TLS, so the tests control exactly how many connections exist.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wirecore_testserver::TestServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

pub enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

async fn over<IO>(io: IO, proto: Proto) -> Conn
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    match proto {
        Proto::H1 => {
            let (send, conn) = http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Conn::H1(send)
        }
        Proto::H2 => {
            let (send, conn) = http2::Builder::new(TokioExecutor::new())
                .initial_stream_window_size(4 << 20)
                .initial_connection_window_size(8 << 20)
                .handshake(io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Conn::H2(send)
        }
    }
}

/// A connection to the plain port.
pub async fn plain(addr: SocketAddr, proto: Proto) -> Conn {
    over(TcpStream::connect(addr).await.unwrap(), proto).await
}

pub fn tls_config(ca_pem: &str, proto: Proto) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![match proto {
        Proto::H1 => b"http/1.1".to_vec(),
        Proto::H2 => b"h2".to_vec(),
    }];
    Arc::new(cfg)
}

/// Like [`tls_config`], presenting the server's client certificate.
pub fn mtls_config(server: &TestServer, proto: Proto) -> Arc<ClientConfig> {
    use rustls_pki_types::PrivateKeyDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(server.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(server.client_cert_pem().as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(server.client_key_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    cfg.alpn_protocols = vec![match proto {
        Proto::H1 => b"http/1.1".to_vec(),
        Proto::H2 => b"h2".to_vec(),
    }];
    Arc::new(cfg)
}

/// A connection over an established stream.
pub async fn conn_over<IO>(io: IO, proto: Proto) -> Conn
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    over(io, proto).await
}

pub async fn tls_stream(
    addr: SocketAddr,
    cfg: Arc<ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A connection to the TLS port, with ALPN chosen by `proto`.
pub async fn tls(server: &TestServer, proto: Proto) -> Conn {
    let cfg = tls_config(server.ca_pem(), proto);
    over(tls_stream(server.tls_addr(), cfg).await.unwrap(), proto).await
}

impl Conn {
    pub async fn send(
        &mut self,
        mut req: Request<Full<Bytes>>,
    ) -> hyper::Result<Response<Incoming>> {
        match self {
            Conn::H1(s) => {
                if !req.headers().contains_key(http::header::HOST) {
                    req.headers_mut()
                        .insert(http::header::HOST, "localhost".parse().unwrap());
                }
                s.ready().await?;
                s.send_request(req).await
            }
            Conn::H2(s) => {
                // HTTP/2 needs an absolute URI for :scheme and :authority.
                *req.uri_mut() = format!("http://localhost{}", req.uri()).parse().unwrap();
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }

    /// Sends and reads the whole body.
    pub async fn request(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Reply> {
        let resp = self.send(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request(get(path)).await.unwrap()
    }
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::default()).unwrap()
}

pub fn post(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path).body(Full::new(body.into())).unwrap()
}

/// The byte pattern `/bytes/N` serves.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}
