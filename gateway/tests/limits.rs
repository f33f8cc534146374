//! The gateway's own bounds, flooded in process: a request body larger than the limit
//! is refused before it is read in full; requests past the in-flight limit and
//! WebSockets past theirs are refused with 503 `OVERLOADED`, and room comes back as
//! they end. None of them queues: memory stays bounded however hard it is pushed.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use tape_gateway::{router, GatewayConfig};
use tokio::sync::watch;
use tower::ServiceExt;

const ADMIN: &str = "admin-token-for-tests";

struct Gateway {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn gateway(tune: impl FnOnce(&mut GatewayConfig)) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let (_, views) = tape_projections::open(&dir.path().join("views")).unwrap();
    // No engine runs: a mutation waits for its answer until `outcome_wait`.
    let (sources, progress_tx, _) = support::sources(dir.path(), views, 4);
    std::mem::forget(progress_tx);
    let mut config = GatewayConfig::new(ADMIN);
    tune(&mut config);
    let router =
        router(sources, config).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    Gateway { router, _dir: dir }
}

impl Gateway {
    /// A small query still gets its answer.
    async fn answers_a_query(&self) {
        let query = Body::from(r#"{"query":"{ assets { code } }"}"#);
        let r = self.router.clone().oneshot(post(query)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

fn post(body: Body) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(body)
        .unwrap()
}

fn mutation() -> Body {
    Body::from(r#"{"query":"mutation { createAsset(code: \"BTC\", scale: 8) { status } }"}"#)
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let g = gateway(|c| c.body_bytes_max = 64 << 10);
    // Declared too large: refused on the header alone.
    let big = vec![b' '; 65 << 10];
    let mut request = post(Body::from(big));
    request
        .headers_mut()
        .insert("content-length", (65u32 << 10).into());
    let r = g.router.clone().oneshot(request).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Streamed without a length, 1 GiB of it: the gateway stops reading at the limit.
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let chunks = futures::stream::iter(0..16_384).map(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        Ok::<_, std::io::Error>(vec![b' '; 64 << 10])
    });
    use futures::StreamExt;
    let r = g
        .router
        .clone()
        .oneshot(post(Body::from_stream(chunks)))
        .await
        .unwrap();
    assert!(
        r.status().is_client_error(),
        "an endless body is refused, got {}",
        r.status()
    );
    let n = pulled.load(Ordering::Relaxed);
    assert!(n <= 4, "{n} chunks of 64 KiB were read for a 64 KiB limit");

    // A normal request still goes through.
    g.answers_a_query().await;
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_are_refused_and_room_comes_back() {
    let g = gateway(|c| {
        c.requests_in_flight_max = 2;
        c.outcome_wait = Duration::from_secs(2);
    });
    let waiting: Vec<_> = (0..2)
        .map(|_| tokio::spawn(g.router.clone().oneshot(post(mutation()))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A flood past the limit: every one refused at once, none queued.
    for _ in 0..100 {
        let r = g.router.clone().oneshot(post(mutation())).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("OVERLOADED"));
    }
    for w in waiting {
        assert_eq!(w.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    g.answers_a_query().await;
}

#[tokio::test]
async fn websockets_past_the_limit_are_refused_and_room_comes_back() {
    let g = gateway(|c| c.websockets_max = 2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(tape_gateway::serve(listener, g.router.clone(), stopped));
    let url = format!("ws://{addr}/graphql/ws");
    let connect = || {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req)
    };
    let first = connect().await.unwrap();
    let second = connect().await.unwrap();
    for _ in 0..20 {
        match connect().await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE)
            }
            other => panic!("a third WebSocket was not refused: {:?}", other.map(|_| ())),
        }
    }
    drop(first);
    // The server notices the close, and the permit comes back.
    let mut third = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(ws) = connect().await {
            third = Some(ws);
            break;
        }
    }
    assert!(third.is_some(), "room did not come back after a close");
    drop(second);
}

/// A public query with no token: limited per address.
fn anonymous_query() -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"query":"{ assets { code } }"}"#))
        .unwrap()
}

#[tokio::test]
async fn every_answer_says_what_is_left_of_the_quota_and_a_refusal_says_when_to_retry() {
    let g = gateway(|c| {
        c.rate_per_second = 1;
        c.rate_burst = 3;
    });
    let header = |r: &axum::response::Response, name: &str| {
        r.headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    for left in ["2", "1", "0"] {
        let r = g.router.clone().oneshot(anonymous_query()).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "ratelimit-limit"), "3");
        assert_eq!(header(&r, "ratelimit-remaining"), left);
    }
    let r = g.router.clone().oneshot(anonymous_query()).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "ratelimit-remaining"), "0");
    let retry_after: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=1).contains(&retry_after), "Retry-After: {retry_after}");
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "RATE_LIMITED", "{body}");
    let retry_ms = ext["retryAfterMs"].as_u64().unwrap();
    assert!((1..=1_000).contains(&retry_ms), "{body}");
    assert_eq!(
        (ext["limit"].as_u64(), ext["remaining"].as_u64()),
        (Some(3), Some(0))
    );

    // The bucket refills at the advertised pace: after the wait, one more request.
    tokio::time::sleep(Duration::from_millis(retry_ms)).await;
    let r = g.router.clone().oneshot(anonymous_query()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "ratelimit-remaining"), "0");
}

/// Until the read models reach the events log's end as it stood at start, `/health`
/// says 503 `starting`, and a key the read models do not hold yet is answered
/// "catching up, retry" (503), not "unknown" (401).
#[tokio::test]
async fn until_the_read_models_catch_up_health_is_503_and_an_unknown_key_is_asked_to_retry() {
    let health = || Request::get("/health").body(Body::empty()).unwrap();
    let unknown_key = || {
        Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", "Bearer tape_3_00ff")
            .body(Body::from(r#"{"query":"{ assets { code } }"}"#))
            .unwrap()
    };
    let g = gateway(|c| c.ready_at_offset = 10);
    let r = g.router.clone().oneshot(health()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("\"starting\""));
    let r = g.router.clone().oneshot(unknown_key()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("catching up"));

    // Caught up (nothing to reach): ready, and an unknown key is unknown.
    let g = gateway(|c| c.ready_at_offset = 0);
    let r = g.router.clone().oneshot(health()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        g.router
            .clone()
            .oneshot(unknown_key())
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}
