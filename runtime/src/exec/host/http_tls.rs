//! `http-tls` (adrt:check 0.1.1): a request sent exactly as `http.send` sends it (the same
//! [`StoreState::exchange`], so the same egress rules, redirects, credentials and limits), with
//! the server's leaf certificate besides, for checks that watch when certificates expire.

use x509_parser::objects::oid_registry;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::http::{ClientOptions, PeerCertificate};
use crate::exec::bindings::adrt::check::http::{Error, Request};
use crate::exec::bindings::adrt::check::http_tls::{Certificate, Host, TlsResponse};
use crate::exec::store::StoreState;

impl Host for StoreState {
    async fn send(&mut self, request: Request) -> Result<TlsResponse, Error> {
        self.send_keeping_certificate(request, ClientOptions::default()).await
    }
}

impl StoreState {
    /// A request and the server's certificate: `http-tls.send`, and `http-client.send` with its
    /// options.
    pub(crate) async fn send_keeping_certificate(&mut self, request: Request, options: ClientOptions) -> Result<TlsResponse, Error> {
        let url = request.url.clone();
        let (response, der) = self.exchange(request, PeerCertificate::Keep, options).await?;
        let peer_certificate = der.map(|der| certificate(&url, der)).transpose()?;
        Ok(TlsResponse { response, peer_certificate })
    }
}

/// The fields of a DER certificate. One that does not parse is reported as a TLS error of the
/// request: with `tls-verify` off, the handshake accepts any bytes as the certificate.
fn certificate(url: &str, der: Vec<u8>) -> Result<Certificate, Error> {
    let (not_before, not_after, subject, issuer) = {
        let (_, parsed) =
            X509Certificate::from_der(&der).map_err(|e| Error::Tls(format!("{url}: the server's certificate does not parse: {e}")))?;
        let validity = parsed.validity();
        (validity.not_before.timestamp(), validity.not_after.timestamp(), text(parsed.subject()), text(parsed.issuer()))
    };
    Ok(Certificate { not_before, not_after, subject, issuer, der })
}

/// A distinguished name as the WIT says: `KEY=value` pairs in order, joined by `, `; empty when a
/// value is text that is not valid in its encoding (the DER holds the name whatever it is).
fn text(name: &X509Name<'_>) -> String {
    name.to_string_with_registry(oid_registry()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_gives_its_validity_and_names_and_garbage_is_a_tls_error() {
        let dir = adrt_testkit::scratch_dir("http-tls-unit");
        let (pem, _) = adrt_testkit::self_signed_certificate(&dir, "unit.example");
        use base64::Engine as _;
        let pem = std::fs::read_to_string(pem).unwrap();
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let parsed = certificate("https://unit.example/", der.clone()).unwrap();
        assert_eq!((parsed.subject.as_str(), parsed.issuer.as_str()), ("CN=unit.example", "CN=unit.example"));
        assert_eq!(parsed.not_after - parsed.not_before, 86_400, "openssl's -days 1");
        assert_eq!(parsed.der, der);
        let error = certificate("https://unit.example/", b"not a certificate".to_vec()).unwrap_err();
        assert!(matches!(&error, Error::Tls(m) if m.starts_with("https://unit.example/: the server's certificate does not parse")), "{error:?}");
    }
}
