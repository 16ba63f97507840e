//! rustls client configuration: TLS ≥ 1.2, ALPN `h2`/`http/1.1`, session resumption, roots from
//! webpki or the OS plus extra CAs, optional client certificate. Verification is on unless
//! `danger_accept_invalid_certs` is set, which warns on stderr when the client is built.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::config::{RootStore, TlsConfig, TlsVersion};
use crate::error::{self, Error, ErrorKind};
use crate::response::TlsInfo;

fn pem_bytes(field: &str, value: &str) -> Result<Vec<u8>, Error> {
    if value.contains("-----BEGIN") {
        Ok(value.as_bytes().to_vec())
    } else {
        std::fs::read(value)
            .map_err(|e| error::config(format!("{field}: cannot read {value:?}: {e}")))
    }
}

fn certs(field: &str, value: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = pem_bytes(field, value)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| error::config(format!("{field}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(error::config(format!("{field}: no certificate found")));
    }
    Ok(certs)
}

pub(crate) fn client_config(cfg: &TlsConfig, h2: bool) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match cfg.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| error::config(format!("tls.min_version: {e}")))?;
    let builder = if cfg.danger_accept_invalid_certs {
        #[expect(clippy::print_stderr, reason = "an insecure client must be loud")]
        {
            eprintln!(
                "wirecore: WARNING: tls.danger_accept_invalid_certs is set; server certificates are NOT verified"
            );
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match cfg.roots {
            RootStore::Webpki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            RootStore::Native => {
                let found = rustls_native_certs::load_native_certs();
                for c in found.certs {
                    let _ = roots.add(c);
                }
            }
            RootStore::None => {}
        }
        for (i, pem) in cfg.extra_ca_pem.iter().enumerate() {
            for c in certs(&format!("tls.extra_ca_pem[{i}]"), pem)? {
                roots
                    .add(c)
                    .map_err(|e| error::config(format!("tls.extra_ca_pem[{i}]: {e}")))?;
            }
        }
        for (i, path) in cfg.ca_files.iter().enumerate() {
            let field = format!("tls.ca_files[{i}]");
            let bytes = std::fs::read(path)
                .map_err(|e| error::config(format!("{field}: cannot read {path:?}: {e}")))?;
            let text = String::from_utf8_lossy(&bytes);
            for c in certs(&field, &text)? {
                roots
                    .add(c)
                    .map_err(|e| error::config(format!("{field}: {e}")))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let chain = certs("tls.client_cert", cert)?;
            let key_bytes = pem_bytes("tls.client_key", key)?;
            let key = PrivateKeyDer::from_pem_slice(&key_bytes)
                .map_err(|e| error::config(format!("tls.client_key: bad PEM key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| error::config(format!("tls.client_cert: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.resumption = if cfg.resumption() {
        Resumption::in_memory_sessions(512)
    } else {
        Resumption::disabled()
    };
    Ok(config)
}

pub(crate) async fn handshake(
    tls: &tokio_rustls::TlsConnector,
    host: &str,
    tcp: TcpStream,
    timeout_ms: u64,
    origin: &str,
) -> Result<TlsStream<TcpStream>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUrl,
            format!("{host:?} is not a valid TLS server name"),
        )
        .with_source(e)
    })?;
    match tokio::time::timeout(Duration::from_millis(timeout_ms), tls.connect(name, tcp)).await {
        Err(_) => Err(error::timeout(
            ErrorKind::TimeoutTls,
            &format!("TLS handshake with {origin}"),
            timeout_ms,
        )),
        Ok(Err(e)) => {
            let why = e
                .get_ref()
                .map_or_else(|| e.to_string(), ToString::to_string);
            Err(Error::new(
                ErrorKind::Tls,
                format!("TLS handshake with {origin} failed: {why}"),
            )
            .with_source(e))
        }
        Ok(Ok(s)) => Ok(s),
    }
}

/// What the handshake agreed on, kept with the connection for every response it serves.
pub(crate) fn info(stream: &TlsStream<TcpStream>, host: &str) -> TlsInfo {
    let conn = stream.get_ref().1;
    TlsInfo {
        version: conn.protocol_version().map_or(0, u16::from),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map_or(0, |s| u16::from(s.suite())),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        server_name: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        peer_certificates: conn
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.to_vec()).collect())
            .unwrap_or_default(),
    }
}

/// Accepts every certificate, still checking handshake signatures are well-formed.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
