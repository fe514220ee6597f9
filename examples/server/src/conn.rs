//! TCP connections the server can cut, and who is on the other end of each.
//!
//! [`Listener`] accepts like a `TcpListener` and hands each request a [`Peer`]
//! (`ConnectInfo<Peer>`): the client's address (for rate limits) and a handle that closes that
//! TCP connection ([`Peer::cut`]). socketioxide has no public way to close one socket's
//! transport without a Socket.IO DISCONNECT (after which a client does not reconnect), so
//! [`crate::transports`] cuts the connection under a WebSocket that way: the client sees the
//! connection drop, reconnects and catches up.

use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A duplicate of the connection's socket: shutting it down ends the connection, whoever holds
/// the stream.
#[derive(Debug)]
struct Switch(std::net::TcpStream);

/// The far end of a connection: its address, and a handle to cut the connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address (a proxy's, behind one).
    pub addr: SocketAddr,
    switch: Weak<Switch>,
}

impl Peer {
    /// Whether the connection is still open (as far as this server is concerned).
    pub fn is_open(&self) -> bool {
        self.switch.strong_count() > 0
    }

    /// Closes the connection (both directions) if it is still open; says whether it was.
    pub fn cut(&self) -> bool {
        match self.switch.upgrade() {
            Some(s) => s.0.shutdown(Shutdown::Both).is_ok(),
            None => false,
        }
    }
}

impl Connected<IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be cut ([`Peer::cut`]).
#[derive(Debug)]
pub struct Listener(TcpListener);

impl Listener {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        Ok(Listener(TcpListener::bind(addr).await?))
    }

    fn wrap(stream: TcpStream, addr: SocketAddr) -> std::io::Result<(Conn, Peer)> {
        let std = stream.into_std()?;
        let switch = Arc::new(Switch(std.try_clone()?));
        let peer = Peer { addr, switch: Arc::downgrade(&switch) };
        Ok((Conn { io: TcpStream::from_std(std)?, _switch: switch }, peer))
    }
}

impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = Peer;

    async fn accept(&mut self) -> (Conn, Peer) {
        loop {
            match self.0.accept().await.and_then(|(s, addr)| Listener::wrap(s, addr)) {
                Ok(accepted) => return accepted,
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // As axum does: most likely out of file descriptors; wait a little.
                    tracing::error!(error = %e, "accept error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Peer> {
        Ok(Peer { addr: self.0.local_addr()?, switch: Weak::new() })
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// An accepted connection: the stream, and what keeps its [`Peer::cut`] handle alive (no
/// longer than the connection).
#[derive(Debug)]
pub struct Conn {
    io: TcpStream,
    _switch: Arc<Switch>,
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
