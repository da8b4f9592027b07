//! Where the page is. Routes live in the URL's hash (`#/room/CODE`, `#/party/ID`), so a link
//! to a room opens that room directly on any static host. This is the one place that knows
//! their shape: views parse, link and navigate through [`Route`].

/// A place in the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Lobby,
    Room(String),
    Party(String),
}

const ROOM_PREFIX: &str = "#/room/";
const PARTY_PREFIX: &str = "#/party/";
const LOBBY_HREF: &str = "#/";

impl Route {
    /// The route a decoded hash names; anything else (an empty id included) is the lobby.
    pub fn parse(hash: &str) -> Self {
        let pick = |prefix: &str| {
            hash.strip_prefix(prefix)
                .map(str::trim)
                .filter(|rest| !rest.is_empty())
                .map(str::to_owned)
        };
        if let Some(code) = pick(ROOM_PREFIX) {
            Self::Room(code)
        } else if let Some(id) = pick(PARTY_PREFIX) {
            Self::Party(id)
        } else {
            Self::Lobby
        }
    }

    /// The hash that names this route, for links.
    pub fn href(&self) -> String {
        match self {
            Self::Lobby => LOBBY_HREF.to_owned(),
            Self::Room(code) => format!("{ROOM_PREFIX}{code}"),
            Self::Party(id) => format!("{PARTY_PREFIX}{id}"),
        }
    }

    /// The page's route now.
    pub fn current() -> Self {
        let hash = web_sys::window()
            .and_then(|w| w.location().hash().ok())
            .unwrap_or_default();
        let decoded = js_sys::decode_uri_component(&hash)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or(hash);
        Self::parse(&decoded)
    }

    /// Goes there; the page's `hashchange` follows.
    pub fn go(&self) {
        if let Some(window) = web_sys::window() {
            let _ = window.location().set_hash(&self.href());
        }
    }

    /// This route's whole URL on the page's origin, to share.
    pub fn url(&self) -> Option<String> {
        let origin = web_sys::window()?.location().origin().ok()?;
        Some(format!("{origin}/{}", self.href()))
    }
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn every_route_parses_back_from_its_href() {
        for route in [
            Route::Lobby,
            Route::Room("K7QX2M".into()),
            Route::Party("0f6c-11".into()),
        ] {
            assert_eq!(Route::parse(&route.href()), route);
        }
    }

    #[test]
    fn anything_else_is_the_lobby() {
        for hash in [
            "",
            "#",
            "#/",
            "#/room/",
            "#/room/  ",
            "#/elsewhere/x",
            "room/K7QX2M",
        ] {
            assert_eq!(Route::parse(hash), Route::Lobby, "{hash:?}");
        }
        assert_eq!(
            Route::parse("#/room/ K7QX2M "),
            Route::Room("K7QX2M".into())
        );
    }
}
