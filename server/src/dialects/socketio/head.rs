//! A Socket.IO request's head, detached from the connection's read buffer.
//!
//! hyper parses a request's URI and header values as slices of the connection's read buffer
//! (16 KiB), and engineioxide keeps the head for as long as the socket lives
//! (`Socket::req_parts`): each idle socket kept that whole buffer alive, a fifth of what it
//! cost. Copied, the head costs its own few hundred bytes. Other requests keep theirs only
//! while they are answered, so only Socket.IO's are copied.
//!
//! Only what someone reads later is kept. The headers: [`KEPT_HEADERS`]; a browser's upgrade
//! request carries a dozen more (its user agent, languages, cookies). The extensions: only
//! hyper's upgrade, which engineioxide takes; the others (the peer's address, the request
//! id, axum's original URI) are a map of boxed values that nobody reads once the request
//! has reached the socket. Every socket would otherwise keep all of it for its whole life.

use axum::{
    extract::Request,
    http::{header, Extensions, HeaderMap, HeaderName, HeaderValue, Uri},
};
use hyper::upgrade::OnUpgrade;

/// Where socketioxide answers (its default path).
const PATH: &str = "/socket.io/";

/// The headers a Socket.IO request keeps: the bearer token Confab reads when a socket
/// connects (`auth::caller::jwt_from_headers`), and what engineioxide reads (the upgrade's
/// key, a polling POST's content type). The layers outside this one (CORS, request ids,
/// the access log) have seen the request whole already.
const KEPT_HEADERS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::SEC_WEBSOCKET_KEY,
];

/// Gives a Socket.IO request's head (URI and the headers it keeps) storage of its own, and
/// drops the extensions nobody reads.
pub async fn detach_request_head(mut request: Request) -> Request {
    if !request.uri().path().starts_with(PATH) {
        return request;
    }
    let upgrade = request.extensions_mut().remove::<OnUpgrade>();
    // axum's original URI was among them, which shares the read buffer too.
    let mut extensions = Extensions::new();
    if let Some(upgrade) = upgrade {
        extensions.insert(upgrade);
    }
    *request.extensions_mut() = extensions;
    if let Ok(uri) = request.uri().to_string().parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    let kept = || {
        request
            .headers()
            .iter()
            .filter(|(name, _)| KEPT_HEADERS.contains(name))
    };
    // Sized to what it keeps: grown one header at a time, a map makes room for six, and
    // each slot is about a hundred bytes.
    let mut headers = HeaderMap::with_capacity(kept().count());
    for (name, value) in kept() {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            headers.append(name.clone(), copy);
        }
    }
    *request.headers_mut() = headers;
    request
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};

    use axum::extract::{ConnectInfo, OriginalUri};

    use super::*;

    /// Whether `text` lies inside `buffer`.
    fn within(buffer: &Bytes, text: &[u8]) -> bool {
        buffer.as_ptr_range().contains(&text.as_ptr())
    }

    /// A request as hyper parses one, with its URI and its `authorization` header's value
    /// slices of `buffer`: the URI its first `uri_len` bytes, the value the rest.
    fn parsed_from(buffer: &Bytes, uri_len: usize) -> Request {
        let uri = Uri::from_maybe_shared(buffer.slice(..uri_len)).unwrap();
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = uri.clone();
        request.extensions_mut().insert(OriginalUri(uri));
        let mut token = HeaderValue::from_maybe_shared(buffer.slice(uri_len..)).unwrap();
        token.set_sensitive(true);
        request.headers_mut().append(header::AUTHORIZATION, token);
        request
    }

    #[tokio::test]
    async fn a_socket_io_requests_head_no_longer_shares_the_read_buffer() {
        let uri = "/socket.io/?EIO=4&transport=websocket";
        let buffer = Bytes::from(format!("{uri}Bearer a.b.c"));
        let request = parsed_from(&buffer, uri.len());
        assert!(
            within(&buffer, request.uri().path().as_bytes()),
            "the setup shares it"
        );

        let request = detach_request_head(request).await;
        assert_eq!(request.uri(), uri);
        assert!(!within(&buffer, request.uri().path().as_bytes()));
        assert!(
            request.extensions().get::<OriginalUri>().is_none(),
            "axum's copy of the URI, which shared the buffer too, is gone"
        );
        let token = request.headers().get(header::AUTHORIZATION).unwrap();
        assert_eq!(token, "Bearer a.b.c");
        assert!(token.is_sensitive(), "still kept out of logs");
        assert!(!within(&buffer, token.as_bytes()));
    }

    #[tokio::test]
    async fn a_socket_io_request_keeps_only_the_headers_read_later() {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = Uri::from_static("/socket.io/?EIO=4&transport=polling");
        let headers = request.headers_mut();
        for (name, value) in [
            ("authorization", "Bearer a.b.c"),
            ("content-type", "text/plain;charset=UTF-8"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("cookie", "session=1; theme=dark"),
            ("user-agent", "Mozilla/5.0"),
            ("accept-language", "en-GB,en;q=0.9"),
            ("origin", "http://a.example"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }

        let request = detach_request_head(request).await;
        let mut kept: Vec<&str> = request.headers().keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["authorization", "content-type", "sec-websocket-key"]);
        assert!(
            request.headers().capacity() <= kept.len() + 1,
            "no room kept for headers it will never hold: {}",
            request.headers().capacity()
        );
        assert_eq!(
            request.headers()[header::CONTENT_TYPE],
            "text/plain;charset=UTF-8"
        );
    }

    /// hyper's upgrade is kept: without it no Socket.IO client could switch to WebSocket,
    /// which the real socket.io-client tests do (it has no public constructor to use here).
    #[tokio::test]
    async fn a_socket_io_request_drops_the_extensions_nobody_reads() {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = Uri::from_static("/socket.io/?EIO=4&transport=websocket");
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
        extensions.insert(OriginalUri(Uri::from_static("/socket.io/")));

        let request = detach_request_head(request).await;
        assert!(request.extensions().is_empty());
    }

    #[tokio::test]
    async fn other_requests_are_left_as_they_are() {
        let buffer = Bytes::from_static(b"/api/roomsBearer a.b.c");
        let mut request = parsed_from(&buffer, "/api/rooms".len());
        request
            .headers_mut()
            .append(header::COOKIE, HeaderValue::from_static("session=1"));
        let request = detach_request_head(request).await;
        assert!(within(&buffer, request.uri().path().as_bytes()));
        assert!(request.headers().contains_key(header::COOKIE));
        assert!(request.extensions().get::<OriginalUri>().is_some());
    }
}
