//! What one webhook replica serves, asked directly at its pod IP: the certificate it presents
//! and the answer it gives to an AdmissionReview. Used by the in-cluster scenario to time
//! rotations per replica (the API server would only show the Service's view).

use crate::Result;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Accepts any certificate: the probe reports the certificate so the caller compares it
/// with the one it expects; signatures are still checked by the provider's algorithms.
#[derive(Debug)]
struct Recorder(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
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

fn config() -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Connects to `addr` with TLS (SNI `server_name`), sends `request` if any and reads the reply
/// until the server closes. Returns the leaf certificate (DER) and the reply bytes.
pub fn exchange(
    addr: SocketAddr,
    server_name: &str,
    request: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config()?, name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    let cert = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or_else(|| format!("{addr} presented no certificate"))?;
    let mut reply = Vec::new();
    if let Some(req) = request {
        tls.write_all(req)
            .map_err(|e| format!("write to {addr}: {e}"))?;
        tls.flush().map_err(|e| e.to_string())?;
        // A server that closes without close_notify ends with UnexpectedEof: what was read
        // before it is the reply.
        if let Err(e) = tls.read_to_end(&mut reply)
            && e.kind() != std::io::ErrorKind::UnexpectedEof
        {
            return Err(format!("read from {addr}: {e}"));
        }
    }
    Ok((cert, reply))
}

/// The certificate `addr` presents.
pub fn served_certificate(addr: SocketAddr, server_name: &str) -> Result<Vec<u8>> {
    exchange(addr, server_name, None).map(|(c, _)| c)
}

/// Sends an AdmissionReview for `pod` (CREATE) to `https://addr/mutate` and returns the
/// JSON Patch operations of the answer (empty when it allows without a patch).
pub fn review(
    addr: SocketAddr,
    server_name: &str,
    namespace: &str,
    pod: &Value,
) -> Result<Vec<Value>> {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-4000-8000-00000000e2e0",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "sidecar-kit-e2e"},
            "object": pod,
            "dryRun": true,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
    .to_string();
    let req = format!(
        "POST /mutate HTTP/1.1\r\nHost: {server_name}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (_, reply) = exchange(addr, server_name, Some(req.as_bytes()))?;
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}: no HTTP reply"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{addr}: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    let review: Value =
        serde_json::from_str(body).map_err(|e| format!("{addr}: reply is not JSON: {e}"))?;
    match review["response"]["patch"].as_str() {
        None => Ok(Vec::new()),
        Some(b64) => {
            let raw = crate::unbase64(b64).ok_or_else(|| format!("{addr}: patch is not base64"))?;
            serde_json::from_slice(&raw).map_err(|e| format!("{addr}: patch is not JSON: {e}"))
        }
    }
}
