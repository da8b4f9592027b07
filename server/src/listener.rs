//! Accepting connections. axum's `serve` runs hyper without a timer, so a request whose
//! headers trickle in forever (slowloris) is never timed out, and it takes every connection
//! it is offered, so one address can hold every file descriptor. This is axum's loop with
//! what it lacks: a header-read timeout, a cap on the connections one client address holds
//! at once (WebSockets included: the count lives with the socket, not the request) and on
//! the new connections it opens a second, Nagle's algorithm off, and accept errors logged
//! without spinning. [`bind`] gives it a deeper accept queue than `TcpListener::bind`'s.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    pin::{pin, Pin},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    Router,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{
    lock,
    ratelimit::{client_key, KeyedLimiter},
};

/// How long the loop pauses after a failed accept (out of file descriptors, most often):
/// retrying at once would spin a core and flood the log.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Connections the kernel holds for the accept loop, handshake done, before it drops new
/// ones. When thousands of clients come back at once (a node lost from a cluster), the
/// loop falls behind for a moment; each connection the queue then drops retries its
/// handshake after 1, 3, 7, 15 s…. With the 128 that `TcpListener::bind` asks for (as the
/// standard library does), some clients of a 10,000-client storm waited over 30 s while
/// the server sat idle. Linux caps this at `net.core.somaxconn` (4,096 by default).
pub const LISTEN_BACKLOG: u32 = 65_535;

/// Listens on `addr` with a queue of [`LISTEN_BACKLOG`] connections.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can listen again at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// New connections one client address may open a second, by default
/// (`--new-connections-per-address`).
pub const DEFAULT_NEW_CONNECTIONS_PER_SECOND: u32 = 50;

/// What one node accepts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a request's headers may take to arrive.
    pub header_read_timeout: Duration,
    /// Connections one client address (an IPv6 /64) may hold at once.
    pub per_address: usize,
    /// New connections one client address may open a second, on average (bursts of twice
    /// as many).
    pub new_per_address_per_second: u32,
    /// Addresses the cap does not apply to: load balancers and proxies in front.
    pub trusted_proxies: Vec<IpAddr>,
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let open = Arc::new(OpenConnections::new(&limits));
    // Connections watch `signal` to shut down gracefully; `closed` tells when all have.
    let (signal_tx, signal_rx) = watch::channel(());
    let (closed_tx, closed_rx) = watch::channel(());
    let mut failing = false;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(%err, "cannot accept connections");
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        if std::mem::take(&mut failing) {
            tracing::info!("accepting connections again");
        }
        let Some(admitted) = open.admit(peer.ip(), &limits) else {
            tracing::debug!(%peer, "refused: too many connections, or too fast, from one address");
            continue;
        };
        nagle_off(&stream);
        let io = TokioIo::new(Counted {
            stream,
            _admitted: admitted,
        });
        let service = app.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let hyper_service = TowerToHyperService::new(service);
        let signal = signal_tx.clone();
        let closed = closed_rx.clone();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let mut connection = pin!(builder.serve_connection_with_upgrades(io, hyper_service));
            let mut shutting_down = pin!(signal.closed());
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(err) = served {
                            tracing::trace!(%err, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut shutting_down => connection.as_mut().graceful_shutdown(),
                }
            }
            drop(closed);
        });
    }
    drop(listener);
    drop(signal_rx);
    drop(closed_rx);
    closed_tx.closed().await;
    Ok(())
}

/// Turns Nagle's algorithm off, as WebSocket servers have it: small frames go out as they
/// are written. With it on, a chat message written while the previous one is still
/// unacknowledged waits for the peer's delayed acknowledgement, up to 40 ms on Linux.
fn nagle_off(stream: &TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "cannot set TCP_NODELAY");
    }
}

/// How many connections each client address holds, and how fast it opens them.
struct OpenConnections {
    by_address: Mutex<HashMap<IpAddr, usize>>,
    new_by_address: KeyedLimiter<IpAddr>,
}

impl OpenConnections {
    fn new(limits: &Limits) -> Self {
        let per_second = limits.new_per_address_per_second;
        Self {
            by_address: Mutex::default(),
            new_by_address: KeyedLimiter::per_minute(
                per_second.saturating_mul(2),
                per_second.saturating_mul(60),
            ),
        }
    }

    /// Counts one more connection from `ip`, unless its address holds its cap already or
    /// opens connections faster than its rate.
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Option<Admitted> {
        if limits.trusted_proxies.contains(&ip) {
            return Some(Admitted {
                open: None,
                key: ip,
            });
        }
        let key = client_key(ip);
        if !self.new_by_address.try_take(&key) {
            crate::metrics::rate_limited("connections");
            return None;
        }
        let mut by_address = lock(&self.by_address);
        let count = by_address.entry(key).or_default();
        if *count >= limits.per_address {
            return None;
        }
        *count += 1;
        Some(Admitted {
            open: Some(Arc::clone(self)),
            key,
        })
    }
}

/// One admitted connection; dropping it (with the socket) frees its place.
struct Admitted {
    open: Option<Arc<OpenConnections>>,
    key: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut by_address = lock(&open.by_address);
        if let Some(count) = by_address.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                by_address.remove(&self.key);
            }
        }
    }
}

/// A TCP stream that holds its address's place until it is closed, also after an upgrade
/// hands it to a WebSocket.
struct Counted {
    stream: TcpStream,
    _admitted: Admitted,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        nagle_off(&accepted);
        assert!(accepted.nodelay().unwrap());
    }

    /// Far more clients than `TcpListener::bind`'s queue of 128 finish their handshake while the
    /// accept loop is not accepting: none is dropped to retry seconds later.
    #[tokio::test]
    async fn the_listen_queue_holds_a_storm_the_loop_has_not_accepted_yet() {
        const CLIENTS: usize = 1_500;
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        if somaxconn < CLIENTS {
            eprintln!("skipped: net.core.somaxconn ({somaxconn}) caps every queue below {CLIENTS}");
            return;
        }
        rlimit::increase_nofile_limit(4 * CLIENTS as u64).unwrap();
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = (0..CLIENTS)
            .map(|_| tokio::time::timeout(Duration::from_millis(800), TcpStream::connect(addr)));
        let done = futures_util::future::join_all(connects).await;
        let connected = done.iter().filter(|c| matches!(c, Ok(Ok(_)))).count();
        assert_eq!(connected, CLIENTS);
    }

    /// Limits with `per_address` open and `new_per_second` new connections per address,
    /// and 10.0.0.1 a trusted proxy; and the connections open under them.
    fn limited(per_address: usize, new_per_second: u32) -> (Limits, Arc<OpenConnections>) {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(10),
            per_address,
            new_per_address_per_second: new_per_second,
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        };
        let open = Arc::new(OpenConnections::new(&limits));
        (limits, open)
    }

    #[test]
    fn an_address_holds_its_cap_and_frees_places_as_connections_close() {
        let (limits, open) = limited(2, 1000);
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let first = open.admit(client, &limits).unwrap();
        let _second = open.admit(client, &limits).unwrap();
        assert!(
            open.admit(client, &limits).is_none(),
            "the third is refused"
        );
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(
            open.admit(other, &limits).is_some(),
            "other addresses are not"
        );
        drop(first);
        assert!(
            open.admit(client, &limits).is_some(),
            "a closed one frees a place"
        );
        let proxy = "10.0.0.1".parse().unwrap();
        let behind_proxy: Vec<_> = (0..5).map(|_| open.admit(proxy, &limits)).collect();
        assert!(
            behind_proxy.iter().all(Option::is_some),
            "trusted proxies are not capped"
        );
    }

    #[test]
    fn an_address_opens_at_most_twice_its_rate_at_once() {
        let (limits, open) = limited(1000, 5);
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        // Each closed at once, so the cap on open connections plays no part.
        let admitted = (0..20)
            .filter(|_| open.admit(client, &limits).is_some())
            .count();
        assert_eq!(admitted, 10, "a burst of twice the rate, then none");
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(
            open.admit(other, &limits).is_some(),
            "other addresses are not held back"
        );
        let proxy = "10.0.0.1".parse().unwrap();
        assert!(
            (0..20).all(|_| open.admit(proxy, &limits).is_some()),
            "nor are trusted proxies"
        );
    }
}
