//! The admin port: Prometheus's `/metrics` in plain HTTP and the web console over HTTPS,
//! on one listener. The first byte of a connection tells them apart: a TLS ClientHello
//! starts with 0x16 (a handshake record), an HTTP request with a letter.
//!
//! Scrapers keep their plain-text endpoint (counts only, no personal data), while
//! everything of the console needs TLS with the hub's own certificate. A client
//! certificate is optional here, because a browser may sign in with a link instead
//! (`console/session.rs`); one that is presented is verified as on the gRPC port
//! (same CA, revoked serials refused in the handshake).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::identity::Identity;
use crate::pki::PresentedCertificate;
use crate::tls::{Refusals, ServerTls};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Connections the admin port holds at once, handshakes included; one more is closed
/// at once (a flood of idle sockets cannot exhaust the process's file descriptors).
pub const MAX_CONNECTIONS: usize = 256;

/// How one admin connection came in, for the handlers (`ConnectInfo<AdminConnection>`).
#[derive(Debug, Clone)]
pub struct AdminConnection {
    pub remote_addr: SocketAddr,
    pub channel: Channel,
}

#[derive(Debug, Clone)]
pub enum Channel {
    /// Plain HTTP: only `/metrics` is answered.
    Plain,
    /// HTTPS, with the identity of the client certificate if one was presented (or why
    /// the certificate names no Tongban identity).
    Tls {
        certificate: Option<Result<Identity, String>>,
    },
}

/// A connection of either kind, holding its place among [`MAX_CONNECTIONS`].
pub enum AdminStream {
    Plain(TcpStream, OwnedSemaphorePermit),
    Tls(Box<TlsStream<TcpStream>>, OwnedSemaphorePermit),
}

/// The admin port's connections, sniffed and (for HTTPS) handshaken on tasks of their
/// own, so a slow client holds up no other; what `axum::serve` accepts from.
pub struct AdminListener {
    addr: SocketAddr,
    accepted: mpsc::Receiver<(AdminStream, AdminConnection)>,
}

impl AdminListener {
    /// Serves `listener` with the console's TLS configuration (`tls.console`); a
    /// certificate it cannot take is queued for the audit log like the gRPC port's.
    pub fn new(listener: TcpListener, tls: &ServerTls, handshake_timeout: Duration) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(Arc::clone(&tls.console));
        let refusals = Arc::clone(&tls.refusals);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            loop {
                let (tcp, remote_addr) = tokio::select! {
                    accepted = crate::tls::next_connection(&listener) => accepted,
                    _ = tx.closed() => return,
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%remote_addr, "admin port: {MAX_CONNECTIONS} connections open; closing one more");
                    continue;
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let refusals = Arc::clone(&refusals);
                tokio::spawn(async move {
                    let opening = open(tcp, remote_addr, acceptor, slot, &refusals);
                    let opened = tokio::time::timeout(handshake_timeout, opening).await;
                    match opened {
                        Ok(Ok(connection)) => {
                            let _ = tx.send(connection).await;
                        }
                        Ok(Err(e)) => tracing::info!(%remote_addr, error = %e, "admin port: connection refused"),
                        Err(_) => tracing::info!(%remote_addr, "admin port: handshake timed out"),
                    }
                });
            }
        });
        Ok(AdminListener { addr, accepted })
    }
}

/// Tells plain HTTP from TLS and handshakes the latter.
async fn open(
    tcp: TcpStream,
    remote_addr: SocketAddr,
    acceptor: TlsAcceptor,
    slot: OwnedSemaphorePermit,
    refusals: &Refusals,
) -> io::Result<(AdminStream, AdminConnection)> {
    let _ = tcp.set_nodelay(true);
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a request"));
    }
    if first[0] != TLS_HANDSHAKE {
        let connection = AdminConnection {
            remote_addr,
            channel: Channel::Plain,
        };
        return Ok((AdminStream::Plain(tcp, slot), connection));
    }
    let stream = acceptor.accept(tcp).await?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|end_entity| match PresentedCertificate::parse(end_entity) {
            Ok(presented) => {
                let identity = presented.identity();
                if let Err(reason) = &identity {
                    // Audited as on the gRPC port; the browser is asked to sign in.
                    refusals.no_identity(&presented.serial, reason);
                }
                identity
            }
            Err(e) => Err(e.to_string()),
        });
    let connection = AdminConnection {
        remote_addr,
        channel: Channel::Tls { certificate },
    };
    Ok((AdminStream::Tls(Box::new(stream), slot), connection))
}

impl axum::serve::Listener for AdminListener {
    type Io = AdminStream;
    type Addr = AdminConnection;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accept task ended (it never does while this receiver lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(AdminConnection {
            remote_addr: self.addr,
            channel: Channel::Plain,
        })
    }
}

impl Connected<IncomingStream<'_, AdminListener>> for AdminConnection {
    fn connect_info(stream: IncomingStream<'_, AdminListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl AsyncRead for AdminStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AdminStream::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            AdminStream::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AdminStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AdminStream::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            AdminStream::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AdminStream::Plain(s, _) => Pin::new(s).poll_flush(cx),
            AdminStream::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AdminStream::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            AdminStream::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
