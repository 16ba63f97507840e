//! Certificates and rustls configs, generated fresh for every server.
//!
//! A self-signed CA signs the leaf the TLS and mTLS ports serve (SANs: localhost, 127.0.0.1,
//! ::1) and a client certificate; a second, unrelated CA signs the leaf of the "bad TLS"
//! port, so clients trusting only the first CA must reject it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names every leaf certificate is valid for.
const LEAF_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The generated CA, client certificate (written to a temp dir) and the server configs.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) ca_path: PathBuf,
    /// A client certificate signed by the CA, and its PKCS#8 key, both PEM.
    pub(crate) client_cert_pem: String,
    pub(crate) client_key_pem: String,
    pub(crate) client_cert_path: PathBuf,
    pub(crate) client_key_path: PathBuf,
    pub(crate) good: Arc<ServerConfig>,
    pub(crate) bad: Arc<ServerConfig>,
    /// The good certificate, and client certificates signed by the CA are required.
    pub(crate) mtls: Arc<ServerConfig>,
}

impl Pki {
    pub(crate) fn generate() -> io::Result<Self> {
        let ca = Ca::new("wirecore test CA")?;
        let (chain, key) = ca.leaf()?;
        let good = Arc::new(server_config(chain.clone(), key.clone_key(), None)?);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.der().clone()).map_err(other)?;
        let mtls = Arc::new(server_config(chain, key, Some(roots))?);
        let (client_cert_pem, client_key_pem) = ca.client()?;

        let unknown = Ca::new("unknown test CA")?;
        let (chain, key) = unknown.leaf()?;
        let bad = Arc::new(server_config(chain, key, None)?);

        let dir = temp_dir()?;
        let ca_pem = ca.cert.pem();
        let write = |name: &str, text: &str| -> io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        Ok(Self {
            ca_path: write("ca.pem", &ca_pem)?,
            client_cert_path: write("client.pem", &client_cert_pem)?,
            client_key_path: write("client.key", &client_key_pem)?,
            ca_pem,
            client_cert_pem,
            client_key_pem,
            good,
            bad,
            mtls,
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        for path in [&self.ca_path, &self.client_cert_path, &self.client_key_path] {
            let _ = std::fs::remove_file(path);
        }
        if let Some(dir) = self.ca_path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A CA certificate written to a temp file, removed on drop.
pub(crate) struct TempCa {
    pub(crate) path: PathBuf,
}

impl Drop for TempCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// A site's config with a fresh CA and a leaf for the loopback names and `ip`.
pub(crate) fn site_generated(ip: std::net::IpAddr) -> io::Result<(Arc<ServerConfig>, TempCa)> {
    let ca = Ca::new("wirecore serve CA")?;
    let mut names: Vec<String> = LEAF_NAMES.iter().map(|s| (*s).to_owned()).collect();
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    let (chain, key) = ca.leaf_for(names)?;
    let cfg = Arc::new(server_config(chain, key, None)?);
    let path = temp_dir()?.join("ca.pem");
    std::fs::write(&path, ca.cert.pem())?;
    Ok((cfg, TempCa { path }))
}

/// A site's config from a PEM certificate chain and private key.
pub(crate) fn site_from_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> io::Result<Arc<ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    let named = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        io::Error::other(format!("{what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| named("certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| named("certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(named("certificate", cert, &"no CERTIFICATE block"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| named("key", key, &e))?;
    server_config(chain, key_der, None)
        .map(Arc::new)
        .map_err(|e| named("certificate and key", cert, &e))
}

/// A self-signed CA that signs leaves.
struct Ca {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> io::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(other)?;
        let cert = params.self_signed(&key).map_err(other)?;
        Ok(Self {
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// A server leaf for [`LEAF_NAMES`]: the chain (leaf, CA) and the leaf's key.
    fn leaf(&self) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        self.leaf_for(LEAF_NAMES.iter().map(|s| (*s).to_owned()).collect())
    }

    /// A server leaf for `names`: the chain (leaf, CA) and the leaf's key.
    fn leaf_for(
        &self,
        names: Vec<String>,
    ) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let mut params = CertificateParams::new(names).map_err(other)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(other)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(other)?;
        let chain = vec![cert.der().clone(), self.cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((chain, key))
    }

    /// A client certificate: (certificate PEM, key PEM).
    fn client(&self) -> io::Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "wirecore test client");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(other)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(other)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Option<rustls::RootCertStore>,
) -> io::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(other)?;
    let builder = match client_roots {
        None => builder.with_no_client_auth(),
        Some(roots) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(other)?,
        ),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(other)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Both resumption paths: the session-ID cache (TLS 1.2, TLS 1.3 stateful) and tickets.
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    cfg.ticketer = rustls::crypto::ring::Ticketer::new().map_err(other)?;
    Ok(cfg)
}

/// Creates `$TMPDIR/wirecore-testserver-<pid>-<n>/`.
fn temp_dir() -> io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wirecore-testserver-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}
