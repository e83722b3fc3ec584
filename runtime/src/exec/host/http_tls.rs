//! `http-tls` (adrt:check 0.1.1): a request sent exactly as `http.send` sends it (the same
//! [`StoreState::exchange`], so the same egress rules, redirects, credentials and limits), with
//! the server's leaf certificate besides, for checks that watch when certificates expire.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::http::PeerCertificate;
use crate::exec::bindings::adrt::check::http::{Error, Request};
use crate::exec::bindings::adrt::check::http_tls::{Certificate, Host, TlsResponse};
use crate::exec::store::StoreState;

impl Host for StoreState {
    async fn send(&mut self, request: Request) -> Result<TlsResponse, Error> {
        let url = request.url.clone();
        let (response, der) = self.exchange(request, PeerCertificate::Keep).await?;
        let peer_certificate = der.map(|der| certificate(&url, der)).transpose()?;
        Ok(TlsResponse { response, peer_certificate })
    }
}

/// The fields of a DER certificate. One that does not parse is the server's fault, reported as a
/// TLS error of the request (rustls accepted it, so this is rare: an unusual encoding).
fn certificate(url: &str, der: Vec<u8>) -> Result<Certificate, Error> {
    let (not_before, not_after, subject, issuer) = {
        let (_, parsed) =
            X509Certificate::from_der(&der).map_err(|e| Error::Tls(format!("{url}: the server's certificate does not parse: {e}")))?;
        let validity = parsed.validity();
        (validity.not_before.timestamp(), validity.not_after.timestamp(), parsed.subject().to_string(), parsed.issuer().to_string())
    };
    Ok(Certificate { not_before, not_after, subject, issuer, der })
}
