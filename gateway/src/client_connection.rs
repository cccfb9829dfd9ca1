//! A client's mutual-TLS connection to the hub, confirmed before its first request.
//!
//! With TLS 1.3 the hub checks a client's certificate only after the client has sent
//! its last handshake message, and a client may put its first request on the wire at
//! once. A refusal (unknown CA, revoked, expired) then raced that request: the request
//! failed as `Cancelled` or `transport error` and the alert that said why was lost. So
//! the connector waits, after the handshake, for the hub's first bytes: the alert of a
//! refusal, or the HTTP/2 settings every accepted connection begins with. Those bytes
//! are handed on unread, in front of the rest.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// How long a connection waits for the hub's first bytes. The hub sends them at once;
/// a server that waits for the client is given the connection after this.
const CONFIRMATION_WAIT: Duration = Duration::from_secs(3);

/// Connects to one hub address (whatever URI tonic passes), for [`tonic`]'s
/// `connect_with_connector`.
#[derive(Clone)]
pub struct HubConnector {
    pub config: Arc<rustls::ClientConfig>,
    /// The name the hub's certificate must carry: the endpoint's host.
    pub server_name: ServerName<'static>,
    pub host: String,
    pub port: u16,
}

impl tower::Service<tonic::transport::Uri> for HubConnector {
    type Response = TokioIo<ConfirmedConnection>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::transport::Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect((connector.host.as_str(), connector.port)).await?;
            tcp.set_nodelay(true)?;
            let mut tls = TlsConnector::from(connector.config)
                .connect(connector.server_name, tcp)
                .await?;
            let mut first = vec![0u8; 256];
            let read = match tokio::time::timeout(CONFIRMATION_WAIT, tls.read(&mut first)).await {
                // The refusal's alert comes back as this error, for the caller to report.
                Ok(result) => result?,
                Err(_) => 0,
            };
            first.truncate(read);
            Ok(TokioIo::new(ConfirmedConnection {
                first,
                handed: 0,
                inner: tls,
            }))
        })
    }
}

/// The TLS stream, with the bytes read to confirm it put back in front.
pub struct ConfirmedConnection {
    first: Vec<u8>,
    /// How many of `first` have been read again.
    handed: usize,
    inner: TlsStream<TcpStream>,
}

impl AsyncRead for ConfirmedConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.handed < this.first.len() {
            let rest = &this.first[this.handed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.handed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConfirmedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
