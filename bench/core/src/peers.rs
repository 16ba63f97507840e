//! The clients compared, each built the way its users build it, trusting the server's CA.
//! Every client is fresh per cell, so connections opened are counted from zero.

use std::sync::Arc;

use bytes::Bytes;
use http::{Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The URL of one cell and what a correct response looks like.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    pub uri: Uri,
    pub version: Version,
    pub body_len: usize,
}

/// Which client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Wirecore,
    Reqwest,
    Hyper,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Wirecore, Kind::Reqwest, Kind::Hyper];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Wirecore => "wirecore",
            Kind::Reqwest => "reqwest",
            Kind::Hyper => "hyper-util legacy",
        }
    }
}

/// One client of one kind (each is a cheap clone of a shared pool).
#[derive(Clone)]
pub enum Peer {
    Wirecore(wirecore::Client),
    Reqwest(reqwest::Client),
    Hyper(Box<LegacyClient<HttpsConnector<HttpConnector>, Empty<Bytes>>>),
    /// No I/O: measures the harness itself.
    Null,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Peer {
    /// A fresh client of `kind` with default settings (wirecore: `wirecore_config`), trusting
    /// `ca_pem`. Call inside the
    /// benchmark's runtime: wirecore adopts the caller's runtime.
    pub fn new(
        kind: Kind,
        ca_pem: &str,
        wirecore_config: &wirecore::Config,
    ) -> Result<Peer, String> {
        match kind {
            Kind::Wirecore => wirecore::Client::builder()
                .config(wirecore_config.clone())
                .add_root_certificate_pem(ca_pem)
                .build()
                .map(Peer::Wirecore)
                .map_err(|e| format!("wirecore: {e}")),
            Kind::Reqwest => {
                let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
                    .map_err(|e| format!("reqwest CA: {e}"))?;
                reqwest::Client::builder()
                    .add_root_certificate(ca)
                    .no_proxy()
                    .build()
                    .map(Peer::Reqwest)
                    .map_err(|e| format!("reqwest: {e}"))
            }
            Kind::Hyper => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
                    let cert = cert.map_err(|e| format!("CA PEM: {e}"))?;
                    roots.add(cert).map_err(|e| format!("CA: {e}"))?;
                }
                let tls = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("rustls: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let mut http = HttpConnector::new();
                http.set_nodelay(true);
                http.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http);
                Ok(Peer::Hyper(Box::new(
                    LegacyClient::builder(TokioExecutor::new()).build(https),
                )))
            }
        }
    }

    /// One GET, body read to the end: its length and the HTTP version it came over.
    pub async fn get(&self, target: &Target) -> Result<(usize, Version), String> {
        match self {
            Peer::Wirecore(client) => {
                let resp = client
                    .get(&target.url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let version = resp.version();
                if resp.status() != 200 {
                    return Err(format!("status {}", resp.status()));
                }
                let body = resp.bytes().await.map_err(|e| e.to_string())?;
                Ok((body.len(), version))
            }
            Peer::Reqwest(client) => {
                let resp = client
                    .get(&target.url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let version = resp.version();
                if resp.status() != 200 {
                    return Err(format!("status {}", resp.status()));
                }
                let body = resp.bytes().await.map_err(|e| e.to_string())?;
                Ok((body.len(), version))
            }
            Peer::Hyper(client) => {
                let req = http::Request::get(target.uri.clone())
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let resp = client.request(req).await.map_err(|e| e.to_string())?;
                let version = resp.version();
                if resp.status() != 200 {
                    return Err(format!("status {}", resp.status()));
                }
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok((body.len(), version))
            }
            Peer::Null => Ok((target.body_len, target.version)),
        }
    }
}

/// Lets rustls users that do not pick a provider (reqwest built with `rustls-no-provider`)
/// find ring, the provider wirecore uses.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
