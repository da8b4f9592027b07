//! A Socket.IO request's head, detached from the connection's read buffer.
//!
//! hyper parses a request's URI and header values as slices of the connection's read buffer
//! (16 KiB), and engineioxide keeps the head for as long as the socket lives
//! (`Socket::req_parts`), axum's `OriginalUri` included: each idle socket kept that whole
//! buffer alive, a fifth of what it cost. Copied, the head costs its own few hundred bytes.
//! Other requests keep theirs only while they are answered, so only Socket.IO's are copied.

use axum::{
    extract::{OriginalUri, Request},
    http::{HeaderMap, HeaderValue, Uri},
};

/// Where socketioxide answers (its default path).
const PATH: &str = "/socket.io/";

/// Gives a Socket.IO request's head (URI and headers) storage of its own.
pub async fn detach_request_head(mut request: Request) -> Request {
    if !request.uri().path().starts_with(PATH) {
        return request;
    }
    if let Ok(uri) = request.uri().to_string().parse::<Uri>() {
        // axum's router kept a copy of the URI as it arrived, which shares the buffer too.
        if let Some(original) = request.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *request.uri_mut() = uri;
    }
    let headers: HeaderMap = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            let mut copy = HeaderValue::from_bytes(value.as_bytes()).ok()?;
            copy.set_sensitive(value.is_sensitive());
            Some((name.clone(), copy))
        })
        .collect();
    *request.headers_mut() = headers;
    request
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};

    use super::*;

    /// Whether `text` lies inside `buffer`.
    fn within(buffer: &Bytes, text: &[u8]) -> bool {
        buffer.as_ptr_range().contains(&text.as_ptr())
    }

    /// A request as hyper parses one, with its URI and its `origin` header's value slices of
    /// `buffer`: the URI its first `uri_len` bytes, the value the rest.
    fn parsed_from(buffer: &Bytes, uri_len: usize) -> Request {
        let uri = Uri::from_maybe_shared(buffer.slice(..uri_len)).unwrap();
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = uri.clone();
        request.extensions_mut().insert(OriginalUri(uri));
        let origin = HeaderValue::from_maybe_shared(buffer.slice(uri_len..)).unwrap();
        request.headers_mut().append("origin", origin);
        request
    }

    #[tokio::test]
    async fn a_socket_io_requests_head_no_longer_shares_the_read_buffer() {
        let uri = "/socket.io/?EIO=4&transport=websocket";
        let buffer = Bytes::from(format!("{uri}http://a.example"));
        let request = parsed_from(&buffer, uri.len());
        assert!(
            within(&buffer, request.uri().path().as_bytes()),
            "the setup shares it"
        );

        let request = detach_request_head(request).await;
        assert_eq!(request.uri(), uri);
        assert!(!within(&buffer, request.uri().path().as_bytes()));
        let original = &request.extensions().get::<OriginalUri>().unwrap().0;
        assert_eq!(original, request.uri());
        assert!(!within(&buffer, original.path().as_bytes()));
        let origin = request.headers().get("origin").unwrap();
        assert_eq!(origin, "http://a.example");
        assert!(!within(&buffer, origin.as_bytes()));
    }

    #[tokio::test]
    async fn other_requests_are_left_as_they_are() {
        let buffer = Bytes::from_static(b"/api/roomshttp://a.example");
        let request = detach_request_head(parsed_from(&buffer, "/api/rooms".len())).await;
        assert!(within(&buffer, request.uri().path().as_bytes()));
    }
}
