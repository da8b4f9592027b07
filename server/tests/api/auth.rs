//! Token verification end to end: RS256/ES256 from a JWKS file or URL (with key rotation),
//! refused algorithms, audience and not-before, and Confab's own guest tokens.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use crate::common::{spawn_app_with, tokens, TestApp};
use axum::{extract::State, routing::get, Router};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn signed(alg: Algorithm, kid: &str, key_file: &str, claims: Value) -> String {
    let pem = std::fs::read(fixture(key_file)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => unreachable!(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims, &key).unwrap()
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "username": sub, "iss": "https://clerk.example", "exp": tokens::now_secs() + 600})
}

/// Sends `auth` with `token` and returns the answer.
async fn auth(app: &TestApp, token: &str) -> Value {
    let mut ws = app.ws().await;
    ws.send_json(json!({"type": "auth", "token": token})).await;
    ws.recv_json().await
}

/// Tokens for `rsa-user` (RS256, kid `rsa-1`) and `ec-user` (ES256, kid `ec-1`), signed
/// with the keys whose public halves `fixtures/jwks.json` holds.
fn rsa_and_ec_tokens() -> (String, String) {
    let rsa = signed(
        Algorithm::RS256,
        "rsa-1",
        "rsa-private.pem",
        claims("rsa-user"),
    );
    let ec = signed(
        Algorithm::ES256,
        "ec-1",
        "ec-private.pem",
        claims("ec-user"),
    );
    (rsa, ec)
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_a_jwks_file() {
    let app = spawn_app_with(|c| {
        c.jwks = Some(fixture("jwks.json").display().to_string());
        c.jwt_issuer = Some("https://clerk.example".into());
    })
    .await;
    let (rsa, ec) = rsa_and_ec_tokens();
    let ok = auth(&app, &rsa).await;
    assert_eq!(
        (ok["type"].as_str(), ok["userId"].as_str()),
        (Some("auth:ok"), Some("rsa-user"))
    );
    assert_eq!(ok["issuer"], "https://clerk.example");
    let ok = auth(&app, &ec).await;
    assert_eq!(
        (ok["type"].as_str(), ok["userId"].as_str()),
        (Some("auth:ok"), Some("ec-user"))
    );

    // A key used under another kid, an unknown kid, and a tampered payload are refused.
    for token in [
        signed(Algorithm::RS256, "ec-1", "rsa-private.pem", claims("x")),
        signed(Algorithm::RS256, "rsa-9", "rsa-private.pem", claims("x")),
        {
            let mut parts: Vec<String> = rsa.split('.').map(str::to_owned).collect();
            parts[1] = parts[1].chars().rev().collect();
            parts.join(".")
        },
    ] {
        assert_eq!(
            auth(&app, &token).await,
            json!({"type": "auth:error", "error": "invalid token"})
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn algorithms_other_than_hs256_rs256_es256_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &claims("x"),
        &EncodingKey::from_secret(confab_server::config::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    // An unsigned token ("alg": "none").
    let b64 = |v: Value| {
        use std::fmt::Write;
        let text = v.to_string();
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                write!(out, "{}", table[(n >> (18 - 6 * i) & 63) as usize] as char).unwrap();
            }
        }
        out
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims("x"))
    );
    for token in [hs384, none] {
        assert_eq!(auth(&app, &token).await["type"], "auth:error");
    }
    // Without a JWKS, RS256 tokens cannot verify.
    let rsa = signed(Algorithm::RS256, "rsa-1", "rsa-private.pem", claims("x"));
    assert_eq!(auth(&app, &rsa).await["type"], "auth:error");
    app.shutdown().await;
}

/// A JWKS endpoint whose document and behaviour the test can change, counting fetches.
struct JwksServer {
    url: String,
    document: Arc<Mutex<Value>>,
    fetches: Arc<Mutex<usize>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

/// How the JWKS endpoint answers.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Serve,
    Fail,
    /// Answers only after this long.
    Stall(std::time::Duration),
}

async fn jwks_server(document: Value) -> JwksServer {
    type Shared = (Arc<Mutex<Value>>, Arc<Mutex<usize>>, Arc<Mutex<Behaviour>>);
    let document = Arc::new(Mutex::new(document));
    let fetches = Arc::new(Mutex::new(0));
    let behaviour = Arc::new(Mutex::new(Behaviour::Serve));
    let app = Router::new()
        .route(
            "/.well-known/jwks.json",
            get(
                |State((document, fetches, behaviour)): State<Shared>| async move {
                    *fetches.lock().unwrap() += 1;
                    let behaviour = *behaviour.lock().unwrap();
                    match behaviour {
                        Behaviour::Serve => {}
                        Behaviour::Fail => {
                            return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                        }
                        Behaviour::Stall(wait) => tokio::time::sleep(wait).await,
                    }
                    let document = document.lock().unwrap().clone();
                    Ok(axum::Json(document))
                },
            ),
        )
        .with_state((document.clone(), fetches.clone(), behaviour.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    JwksServer {
        url,
        document,
        fetches,
        behaviour,
    }
}

/// A JWKS endpoint that fails, or stalls past the fetch timeout, does not lock sign-in out
/// for the refresh interval: the fetch is tried again after a backoff that starts at a
/// second and doubles, and keys fetched before keep verifying tokens meanwhile.
#[tokio::test]
async fn a_failing_or_stalling_jwks_is_retried_soon_and_known_keys_keep_working() {
    use confab_server::auth::jwks::{FETCH_TIMEOUT, FIRST_RETRY};
    use std::time::Duration;
    const REFRESH_SECS: u64 = 4;
    let margin = Duration::from_millis(200);
    let full: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let only_rsa = json!({"keys": [full["keys"][0].clone()]});
    let jwks = jwks_server(only_rsa).await;
    let url = jwks.url.clone();
    let app = spawn_app_with(|c| {
        c.jwks = Some(url);
        c.jwks_refresh_secs = REFRESH_SECS;
    })
    .await;
    let (rsa, ec) = rsa_and_ec_tokens();
    let set = |behaviour| *jwks.behaviour.lock().unwrap() = behaviour;
    let fetches = || *jwks.fetches.lock().unwrap();

    // The first fetch fails and the endpoint recovers at once: sign-in follows after the
    // first backoff, not the refresh interval.
    set(Behaviour::Fail);
    assert_eq!(auth(&app, &rsa).await["type"], "auth:error");
    set(Behaviour::Serve);
    tokio::time::sleep(FIRST_RETRY + margin).await;
    assert_eq!(auth(&app, &rsa).await["userId"], "rsa-user");
    assert_eq!(fetches(), 2);

    // A new key is asked for while the endpoint fails: refused, and the known key still
    // works.
    *jwks.document.lock().unwrap() = full;
    set(Behaviour::Fail);
    tokio::time::sleep(Duration::from_secs(REFRESH_SECS) + margin).await;
    assert_eq!(auth(&app, &ec).await["type"], "auth:error");
    assert_eq!(fetches(), 3);
    assert_eq!(auth(&app, &rsa).await["userId"], "rsa-user");

    // It stalls past the fetch timeout: the sign-in waiting for it is refused in time, and
    // a known key is answered meanwhile.
    set(Behaviour::Stall(FETCH_TIMEOUT * 3));
    tokio::time::sleep(FIRST_RETRY + margin).await;
    let stalled = tokio::spawn({
        let ws_url = app.ws_url("/ws");
        let ec = ec.clone();
        async move {
            let mut ws = crate::common::WsClient::connect(&ws_url).await;
            ws.send_json(json!({"type": "auth", "token": ec})).await;
            ws.recv_json_within(FETCH_TIMEOUT * 2).await
        }
    });
    tokio::time::sleep(margin).await;
    assert_eq!(auth(&app, &rsa).await["userId"], "rsa-user");
    assert_eq!(stalled.await.unwrap()["type"], "auth:error");
    assert_eq!(fetches(), 4);

    // Two failures in a row: the next try waits twice the first backoff; then the new key
    // works.
    set(Behaviour::Serve);
    tokio::time::sleep(FIRST_RETRY * 2 + margin).await;
    assert_eq!(auth(&app, &ec).await["userId"], "ec-user");
    assert_eq!(fetches(), 5);
    app.shutdown().await;
}

#[tokio::test]
async fn a_jwks_url_is_cached_and_fetched_again_for_a_rotated_key() {
    let full: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("jwks.json")).unwrap()).unwrap();
    let only_ec = json!({"keys": [full["keys"][1].clone()]});
    let jwks = jwks_server(only_ec).await;
    let url = jwks.url.clone();
    let app = spawn_app_with(|c| {
        c.jwks = Some(url);
        c.jwks_refresh_secs = 0;
    })
    .await;
    let ec = signed(
        Algorithm::ES256,
        "ec-1",
        "ec-private.pem",
        claims("ec-user"),
    );
    assert_eq!(auth(&app, &ec).await["type"], "auth:ok");
    assert_eq!(auth(&app, &ec).await["type"], "auth:ok");
    assert_eq!(
        *jwks.fetches.lock().unwrap(),
        1,
        "a known kid is served from the cache"
    );

    // The issuer rotates in a new key: the unknown kid triggers one fetch.
    *jwks.document.lock().unwrap() = full;
    let rsa = signed(
        Algorithm::RS256,
        "rsa-1",
        "rsa-private.pem",
        claims("rsa-user"),
    );
    assert_eq!(auth(&app, &rsa).await["userId"], "rsa-user");
    assert_eq!(*jwks.fetches.lock().unwrap(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_kids_do_not_refetch_within_the_refresh_interval() {
    let jwks = jwks_server(json!({"keys": []})).await;
    let url = jwks.url.clone();
    let app = spawn_app_with(|c| c.jwks = Some(url)).await;
    for kid in ["a", "b", "c"] {
        let token = signed(Algorithm::RS256, kid, "rsa-private.pem", claims("x"));
        assert_eq!(auth(&app, &token).await["type"], "auth:error");
    }
    assert_eq!(*jwks.fetches.lock().unwrap(), 1);
    app.shutdown().await;
}

/// With an audience configured, a token must name it in `aud` (one or among several);
/// `nbf` in the future is refused with or without one. Guest tokens carry no audience and
/// are accepted alongside.
#[tokio::test]
async fn a_configured_audience_is_enforced_and_not_before_is_honoured() {
    let app = spawn_app_with(|c| c.jwt_audience = Some("confab-app".into())).await;
    let now = tokens::now_secs();
    let token = |extra: Value| {
        let mut claims = json!({"sub": "u1", "exp": now + 600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        tokens::hs256(claims)
    };
    let refused = |error: &str| json!({"type": "auth:error", "error": error});
    for (extra, answer) in [
        (json!({}), Some(refused("token audience not accepted"))),
        (
            json!({"aud": "other-app"}),
            Some(refused("token audience not accepted")),
        ),
        (
            json!({"aud": ["other-app", "another"]}),
            Some(refused("token audience not accepted")),
        ),
        (json!({"aud": "confab-app"}), None),
        (json!({"aud": ["other-app", "confab-app"]}), None),
        (
            json!({"aud": "confab-app", "nbf": now + 600}),
            Some(refused("token not yet valid")),
        ),
        (json!({"aud": "confab-app", "nbf": now - 10}), None),
    ] {
        let reply = auth(&app, &token(extra.clone())).await;
        match answer {
            Some(expected) => assert_eq!(reply, expected, "{extra}"),
            None => assert_eq!(reply["type"], "auth:ok", "{extra}: {reply}"),
        }
    }
    let body: Value = guest(&app, json!({"username": "Gus"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        auth(&app, body["token"].as_str().unwrap()).await["type"],
        "auth:ok"
    );
    app.shutdown().await;

    // Without an audience configured, `aud` is not read, but `nbf` still is.
    let app = spawn_app_with(|_| {}).await;
    assert_eq!(
        auth(&app, &token(json!({"aud": "other-app"}))).await["type"],
        "auth:ok"
    );
    assert_eq!(
        auth(&app, &token(json!({"nbf": now + 600}))).await,
        refused("token not yet valid")
    );
    app.shutdown().await;
}

async fn guest(app: &TestApp, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.http_url("/api/auth/guest"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn guest_tokens_sign_people_in_on_ws() {
    // Guest tokens are accepted even when tokens must come from a configured issuer.
    let app = spawn_app_with(|c| c.jwt_issuer = Some("https://clerk.example".into())).await;
    let response = guest(
        &app,
        json!({"username": "  Ana ", "imageUrl": "https://img.example/a.png"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let user_id = body["userId"].as_str().unwrap();
    assert!(user_id.starts_with("guest_"), "{body}");
    let expected_exp = tokens::now_secs() + i64::try_from(app.config.guest_token_ttl_secs).unwrap();
    assert!((body["exp"].as_i64().unwrap() - expected_exp).abs() <= 5);

    let ok = auth(&app, body["token"].as_str().unwrap()).await;
    assert_eq!(
        ok,
        json!({"type": "auth:ok", "userId": user_id, "username": "Ana", "imageUrl": "https://img.example/a.png",
               "issuer": "confab", "exp": body["exp"]})
    );
    app.shutdown().await;
}

#[tokio::test]
async fn guest_requests_are_validated_with_json_errors() {
    let app = spawn_app_with(|_| {}).await;
    for body in [
        json!({"username": ""}),
        json!({"username": "   "}),
        json!({"username": "a".repeat(41)}),
        json!({"username": "bell\u{7}"}),
        json!({"username": "Ana", "imageUrl": "javascript:alert(1)"}),
        json!({"username": "Ana", "imageUrl": format!("https://x/{}", "a".repeat(2048))}),
        json!({"name": "Ana"}),
        json!({"username": 7}),
    ] {
        let response = guest(&app, body.clone()).await;
        assert!(
            response.status().is_client_error(),
            "{body}: {}",
            response.status()
        );
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}: {error}"
        );
    }
    let ok = guest(&app, json!({"username": "a".repeat(40)})).await;
    assert_eq!(ok.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn guest_tokens_are_rate_limited_per_client() {
    let app = spawn_app_with(|_| {}).await;
    for i in 0..confab_server::auth::guest::GUEST_TOKENS_BURST {
        assert_eq!(
            guest(&app, json!({"username": format!("user{i}")}))
                .await
                .status(),
            200
        );
    }
    let limited = guest(&app, json!({"username": "one-too-many"})).await;
    assert_eq!(limited.status(), 429);
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limited");
    app.shutdown().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_guest_tokens_are_limited_per_forwarded_client() {
    let app = spawn_app_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let from = |client: &'static str| {
        app.http
            .post(app.http_url("/api/auth/guest"))
            .header("x-forwarded-for", client)
            .json(&json!({"username": "Guest"}))
            .send()
    };
    for _ in 0..confab_server::auth::guest::GUEST_TOKENS_BURST {
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 200);
    }
    assert_eq!(from("203.0.113.1").await.unwrap().status(), 429);
    // Another client behind the same proxy has a bucket of its own.
    assert_eq!(from("203.0.113.2").await.unwrap().status(), 200);
    // A forged entry before the proxy's own does not make a new client.
    let forged = from("198.51.100.7, 203.0.113.1").await.unwrap();
    assert_eq!(forged.status(), 429);
    app.shutdown().await;
}
