//! TLS with rustls and the `ring` provider, the only crypto stack of the shim.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn tls_error(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

/// A client configuration trusting exactly the CA bundle at `ca_path` (the service account's
/// `ca.crt`).
pub fn verified_config(ca_path: &Path) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_path)
        .map_err(|err| io::Error::other(format!("cannot read {}: {err}", ca_path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|err| io::Error::other(format!("{}: {err}", ca_path.display())))?;
        roots.add(cert).map_err(tls_error)?;
    }
    if roots.is_empty() {
        return Err(io::Error::other(format!(
            "{}: no certificate in it",
            ca_path.display()
        )));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens TLS over `tcp` to `host` (a DNS name or an IP address, checked against the
/// certificate's subject alternative names).
pub fn connect(config: Arc<ClientConfig>, tcp: TcpStream, host: &str) -> io::Result<TlsStream> {
    let name = ServerName::try_from(host.to_string()).map_err(tls_error)?;
    let conn = ClientConnection::new(config, name).map_err(tls_error)?;
    Ok(StreamOwned::new(conn, tcp))
}

/// TLS for `ready --http-get https://...`: like the kubelet's HTTPS probes, the server's
/// certificate is not verified (signatures of the handshake still are).
pub fn insecure_stream(tcp: TcpStream, host: &str) -> io::Result<TlsStream> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    let host = if host.is_empty() { "localhost" } else { host };
    connect(Arc::new(config), tcp, host)
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
