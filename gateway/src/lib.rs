//! Tape's door for frontends: GraphQL over axum. `POST /graphql` (GraphiQL on
//! `GET /graphql`), subscriptions on `/graphql/ws` (graphql-transport-ws), `/health`
//! and `/metrics`, and the pages of `tape-web` at `/`. Queries read the projections;
//! mutations append commands to the commands log and wait for the engine's answer in
//! the projections. API keys come from the log; each key has its own rate limit. No
//! business rules live here.

// No function over 70 lines (clippy.toml): split along the seams, or allow it with
// the reason beside it. `.ci/run` denies warnings, so this is a gate.
#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod error;
mod limiter;
pub mod schema;
pub mod types;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use tape_projections::{Changes, Progress, Views};
use tape_schemas::Hash32;
use tokio::sync::{broadcast, watch};

pub use error::Code;
pub use schema::TapeSchema;
pub use tape_client::{now_ms, CommandsDoor, Submitter};

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// blake3 of the operator's bootstrap admin token.
    pub admin_token_hash: Hash32,
    /// Requests per second per key (or per address without a key), and the burst.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// How long a mutation waits for the engine's answer before it returns PENDING.
    pub outcome_wait: Duration,
    pub query_depth_max: usize,
    pub query_complexity_max: usize,
    /// The largest request body read; a larger one is refused (HTTP 413) before it
    /// is read in full.
    pub body_bytes_max: usize,
    /// Requests being answered at once; one more is refused (HTTP 503, `OVERLOADED`).
    pub requests_in_flight_max: usize,
    /// Live WebSocket connections (subscriptions); one more is refused (HTTP 503).
    pub websockets_max: usize,
    /// The events-log offset the read models must reach before the gateway is ready
    /// (`/health` answers 503 until then, and an API key it does not know yet is
    /// answered "catching up, retry" rather than "unknown"): the log's end at start.
    pub ready_at_offset: u64,
    /// Where `tape pol build` keeps the rounds' trees: proofs are read from there.
    pub pol_dir: Option<std::path::PathBuf>,
}

impl GatewayConfig {
    pub fn new(admin_token: &str) -> GatewayConfig {
        GatewayConfig {
            admin_token_hash: tape_schemas::hash_secret(admin_token),
            rate_per_second: 200,
            rate_burst: 400,
            outcome_wait: Duration::from_secs(5),
            query_depth_max: 12,
            query_complexity_max: 2_000,
            body_bytes_max: 1 << 20,
            requests_in_flight_max: 1_024,
            websockets_max: 10_000,
            ready_at_offset: 0,
            pol_dir: None,
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub commands: IntCounterVec,
    pub projected_seq: IntGauge,
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("tape_gateway_requests_total", "GraphQL requests by result"),
            &["result"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tape_gateway_request_seconds",
                "GraphQL request latency (queries and mutations)",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
            &["kind"],
        )
        .expect("valid metric");
        let commands = IntCounterVec::new(
            Opts::new(
                "tape_gateway_commands_total",
                "Commands submitted, by whether the engine answered within the wait",
            ),
            &["answer"],
        )
        .expect("valid metric");
        let projected_seq = IntGauge::new(
            "tape_projector_next_seq",
            "The next events-log seq the read models will apply",
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(commands.clone()),
            Box::new(projected_seq.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            latency,
            commands,
            projected_seq,
        }
    }
}

/// Everything a resolver may use.
pub struct AppState {
    pub views: Views,
    pub submitter: Submitter,
    pub progress: watch::Receiver<Progress>,
    pub changes: broadcast::Sender<Arc<Changes>>,
    pub config: GatewayConfig,
    pub metrics: Metrics,
    limiter: limiter::Limiter,
    /// Room for requests in flight and live WebSockets: each holds a permit.
    in_flight: Arc<tokio::sync::Semaphore>,
    websockets: Arc<tokio::sync::Semaphore>,
}

#[derive(Clone)]
struct App {
    state: Arc<AppState>,
    schema: TapeSchema,
}

fn build_schema(
    config: &GatewayConfig,
) -> async_graphql::SchemaBuilder<schema::Query, schema::Mutation, schema::Subscription> {
    async_graphql::Schema::build(
        schema::Query::default(),
        schema::Mutation::default(),
        schema::Subscription::default(),
    )
    .limit_depth(config.query_depth_max)
    .limit_complexity(config.query_complexity_max)
}

/// The schema in SDL (what `schemas/graphql/schema.graphql` holds).
pub fn sdl() -> String {
    build_schema(&GatewayConfig::new("")).finish().sdl()
}

/// What a gateway serves from: the read models, the door onto the commands log, and
/// the projector's progress and feed of changes.
pub struct Sources {
    pub views: Views,
    pub submitter: Submitter,
    pub progress: watch::Receiver<Progress>,
    pub changes: broadcast::Sender<Arc<Changes>>,
}

/// The gateway's state and schema, built once for the router or a test.
fn app(sources: Sources, config: GatewayConfig) -> App {
    let Sources {
        views,
        submitter,
        progress,
        changes,
    } = sources;
    let state = Arc::new(AppState {
        views,
        submitter,
        progress,
        changes,
        metrics: Metrics::new(),
        limiter: limiter::Limiter::new(config.rate_per_second, config.rate_burst),
        in_flight: Arc::new(tokio::sync::Semaphore::new(config.requests_in_flight_max)),
        websockets: Arc::new(tokio::sync::Semaphore::new(config.websockets_max)),
        config,
    });
    let schema = build_schema(&state.config).data(state.clone()).finish();
    App { state, schema }
}

/// The schema alone, for executing requests in process (the router adds HTTP,
/// tokens and rate limits in front of it): a request carries its caller as data
/// (`auth::Caller`; none is anonymous).
pub fn schema(sources: Sources, config: GatewayConfig) -> TapeSchema {
    app(sources, config).schema
}

/// The router: `/graphql`, `/graphql/ws`, `/health`, `/metrics`.
pub fn router(sources: Sources, config: GatewayConfig) -> Router {
    let app = app(sources, config);
    let body_bytes_max = app.state.config.body_bytes_max;
    Router::new()
        .route("/graphql", get(tape_web::graphiql).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(tape_web::router())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            body_bytes_max,
        ))
        .with_state(app)
}

fn overloaded(what: &str, max: usize) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Overloaded,
        format!("the gateway is at its limit of {max} {what}; retry shortly"),
    )
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
    .await
}

fn error_response(status: StatusCode, code: Code, message: String) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
    });
    (status, Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let v = v.trim();
            v.strip_prefix("Bearer")
                .or_else(|| v.strip_prefix("bearer"))
                .unwrap_or(v)
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

impl AppState {
    /// True once the read models have reached `ready_at_offset`.
    pub fn ready(&self) -> bool {
        self.progress.borrow().next_offset >= self.config.ready_at_offset
    }

    /// `Ok(remaining)` in the burst, or `Err(wait)` when the bucket is empty.
    fn admit(&self, bucket: String) -> Result<u32, Duration> {
        self.limiter.admit(bucket)
    }

    /// 429 `RATE_LIMITED`: when to retry and what is left, as HTTP headers
    /// (`Retry-After` in whole seconds, `RateLimit-Limit`, `RateLimit-Remaining`) and
    /// as the GraphQL error's extensions (`retryAfterMs`, `limit`, `remaining`,
    /// `perSecond`).
    fn rate_limited(&self, wait: Duration) -> Response {
        let (per_second, burst) = (self.config.rate_per_second, self.config.rate_burst);
        // Rounded up: a client that waits exactly this long must find room.
        let retry_ms = u64::try_from(wait.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .max(1);
        let body = serde_json::json!({
            "errors": [{
                "message": format!(
                    "rate limit exceeded: {per_second} requests/s per key (bursts of {burst}); retry in {retry_ms} ms"
                ),
                "extensions": {
                    "code": Code::RateLimited.as_str(),
                    "retryAfterMs": retry_ms,
                    "limit": burst,
                    "remaining": 0,
                    "perSecond": per_second,
                }
            }]
        });
        let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        let headers = r.headers_mut();
        headers.insert(
            axum::http::header::RETRY_AFTER,
            retry_ms.div_ceil(1000).into(),
        );
        self.quota_headers(headers, 0);
        r
    }

    /// Who is calling, or the answer that refuses them.
    #[allow(clippy::result_large_err)] // the refusal is the response itself
    fn caller(&self, token: &str) -> Result<auth::Caller, Response> {
        match auth::authenticate(&self.views, &self.config.admin_token_hash, token) {
            Ok(c) => Ok(c),
            // A key the read models do not hold yet may be one they have not reached.
            Err(auth::AuthError::Rejected) if !self.ready() => {
                Err(error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    format!(
                        "the read models are catching up with the events log (offset {} of {}): retry shortly",
                        self.progress.borrow().next_offset,
                        self.config.ready_at_offset
                    ),
                ))
            }
            Err(e) => {
                self.metrics
                    .requests
                    .with_label_values(&["unauthenticated"])
                    .inc();
                Err(error_response(
                    StatusCode::UNAUTHORIZED,
                    Code::Unauthenticated,
                    e.to_string(),
                ))
            }
        }
    }

    /// `RateLimit-Limit` (the burst) and `RateLimit-Remaining` (what is left of it).
    fn quota_headers(&self, headers: &mut HeaderMap, remaining: u32) {
        headers.insert("ratelimit-limit", self.config.rate_burst.into());
        headers.insert("ratelimit-remaining", remaining.into());
    }
}

async fn graphql(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let started = Instant::now();
    let st = &app.state;
    let Ok(_permit) = st.in_flight.clone().try_acquire_owned() else {
        st.metrics.requests.with_label_values(&["overloaded"]).inc();
        return overloaded("requests in flight", st.config.requests_in_flight_max);
    };
    let token = bearer(&headers);
    let caller = match st.caller(&token) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    // The operator's bootstrap token is not limited: it is how they get back in.
    let limited = caller != auth::Caller::Admin { key: None };
    let remaining = match limited {
        true => match st.admit(caller.bucket(&peer.ip().to_string())) {
            Ok(remaining) => Some(remaining),
            Err(wait) => {
                st.metrics
                    .requests
                    .with_label_values(&["rate_limited"])
                    .inc();
                return st.rate_limited(wait);
            }
        },
        false => None,
    };
    let mut request = request.into_inner().data(caller);
    if let Some(signer) = auth::signer(&caller, &token, st.submitter.stream()) {
        request = request.data(signer);
    }
    let kind = if request.query.trim_start().starts_with("mutation") {
        "mutation"
    } else {
        "query"
    };
    // The read models hold every event up to this seq (later ones may show too).
    let seq = st.progress.borrow().next_seq.saturating_sub(1);
    let mut response = app.schema.execute(request).await;
    response
        .extensions
        .insert("seq".to_string(), async_graphql::Value::from(seq));
    let result = if response.is_ok() { "ok" } else { "error" };
    st.metrics.requests.with_label_values(&[result]).inc();
    st.metrics
        .latency
        .with_label_values(&[kind])
        .observe(started.elapsed().as_secs_f64());
    let mut answer = GraphQLResponse::from(response).into_response();
    if let Some(remaining) = remaining {
        st.quota_headers(answer.headers_mut(), remaining);
    }
    answer
}

async fn graphql_ws(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let st = app.state.clone();
    if let Err(wait) = st.admit(format!("anon:{}", peer.ip())) {
        return st.rate_limited(wait);
    }
    let Ok(permit) = st.websockets.clone().try_acquire_owned() else {
        return overloaded("WebSocket connections", st.config.websockets_max);
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            // Held for as long as the connection lives.
            let _permit = permit;
            GraphQLWebSocket::new(socket, app.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload
                        .get("authorization")
                        .or_else(|| payload.get("Authorization"))
                        .and_then(|v| v.as_str())
                        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_string())
                        .unwrap_or_default();
                    let caller = auth::authenticate(&st.views, &st.config.admin_token_hash, &token)
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve()
                .await
        })
}

/// 200 once the read models have reached the events log's end as it stood when the
/// gateway started (they then hold every key and order made before); 503 before.
async fn health(State(app): State<App>) -> Response {
    let p = *app.state.progress.borrow();
    let ready = app.state.ready();
    let body = Json(serde_json::json!({
        "status": if ready { "ok" } else { "starting" },
        "projected_seq": p.next_seq.saturating_sub(1),
        "caught_up": p.idle,
        "ready_at_offset": app.state.config.ready_at_offset,
    }));
    match ready {
        true => body.into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, body).into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    let st = &app.state;
    st.metrics
        .projected_seq
        .set(st.progress.borrow().next_seq as i64);
    let mut out = Vec::new();
    // The process's other metrics (the engine's and projector's, when they run here)
    // are in the default registry.
    let mut families = st.metrics.registry.gather();
    families.extend(prometheus::gather());
    if let Err(e) = prometheus::TextEncoder::new().encode(&families, &mut out) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}
