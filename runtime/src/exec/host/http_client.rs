//! `http-client` (adrt:check 0.1.1): a request with the client options of Datadog's HTTP-based
//! checks (client certificate, proxy, redirects, connect and read timeouts), sent through the
//! same [`StoreState::exchange`] as `http.send`, so under the same egress rules, credentials and
//! limits; the response comes with the server's certificate as `http-tls` gives it.

use crate::exec::bindings::adrt::check::http::{Error, Request};
use crate::exec::bindings::adrt::check::http_client::{ClientOptions, Host};
use crate::exec::bindings::adrt::check::http_tls::TlsResponse;
use crate::exec::store::StoreState;

impl Host for StoreState {
    async fn send(&mut self, request: Request, options: ClientOptions) -> Result<TlsResponse, Error> {
        self.send_keeping_certificate(request, options).await
    }
}
