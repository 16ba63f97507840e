//! Certificates and rustls configs, generated fresh for every server.
//!
//! A self-signed CA signs the leaf the TLS port serves (SANs: localhost, 127.0.0.1, ::1); a
//! second, unrelated CA signs the leaf of the "bad TLS" port, so clients trusting only the
//! first CA must reject it.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names every leaf certificate is valid for.
const LEAF_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The generated CA (written to a temp file) and the two server configs.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) ca_path: PathBuf,
    pub(crate) good: Arc<ServerConfig>,
    pub(crate) bad: Arc<ServerConfig>,
}

impl Pki {
    pub(crate) fn generate() -> io::Result<Self> {
        let (ca_pem, good) = signed_config("wirecore test CA")?;
        let (_, bad) = signed_config("unknown test CA")?;
        let ca_path = write_temp(&ca_pem)?;
        Ok(Self {
            ca_pem,
            ca_path,
            good,
            bad,
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_path);
        if let Some(dir) = self.ca_path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Generates a CA and a leaf it signs; returns the CA's PEM and a server config for the leaf.
fn signed_config(ca_name: &str) -> io::Result<(String, Arc<ServerConfig>)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(other)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(other)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = LEAF_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let mut leaf_params = CertificateParams::new(names).map_err(other)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().map_err(other)?;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(other)?;

    let chain = vec![
        leaf_cert.der().clone(),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    Ok((ca_cert.pem(), Arc::new(server_config(chain, key)?)))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(other)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Both resumption paths: the session-ID cache (TLS 1.2, TLS 1.3 stateful) and tickets.
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    cfg.ticketer = rustls::crypto::ring::Ticketer::new().map_err(other)?;
    Ok(cfg)
}

/// Writes the CA to `$TMPDIR/wirecore-testserver-<pid>-<n>/ca.pem`.
fn write_temp(pem: &str) -> io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wirecore-testserver-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ca.pem");
    std::fs::write(&path, pem)?;
    Ok(path)
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}
