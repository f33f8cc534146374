//! Running `tape` processes for end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub const TAPE: &str = env!("CARGO_BIN_EXE_tape");
pub const ADMIN: &str = "test-admin-token";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs `tape` with `args`, `stdin` written to its standard input; its output once
/// it exits (stdout and stderr captured).
pub fn tape_with_stdin<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(TAPE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tape");
    child
        .stdin
        .take()
        .expect("a piped stdin")
        .write_all(stdin.as_bytes())
        .expect("tape reads its stdin");
    child.wait_with_output().expect("tape exits")
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

impl Server {
    /// Stops it the way an operator would (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }

    /// `tape run` over a fresh embedded log.
    pub fn start(extra: &[&str]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec![
            "run".to_string(),
            "--data".into(),
            data.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        Server::spawn(args, data)
    }

    /// Starts `tape <args> --listen 127.0.0.1:0 --admin-token …` and waits for its address.
    pub fn spawn(mut args: Vec<String>, data: tempfile::TempDir) -> Server {
        args.extend(["--listen", "127.0.0.1:0", "--admin-token", ADMIN].map(String::from));
        let mut child = Command::new(TAPE)
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tape");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("tape {args:?} exited before listening"))
                .unwrap();
            if let Some(rest) = line.strip_prefix("tape: GraphQL on http://") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        // Its warnings and errors (RUST_LOG=warn) show with a failing test's output.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("tape server: {line}");
            }
        });
        Server {
            child,
            addr,
            data,
            http: reqwest::Client::new(),
        }
    }

    pub async fn post(&self, token: &str, query: &str, variables: Value) -> (u16, Value) {
        let mut r = self.http.post(format!("http://{}/graphql", self.addr));
        if !token.is_empty() {
            r = r.bearer_auth(token);
        }
        let r = r
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// The `data` of a query that must succeed.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(token, query, variables).await;
        assert!(
            status == 200 && body.get("errors").is_none(),
            "{query}: {status} {body}"
        );
        body["data"].clone()
    }

    /// The first error of a query that must fail.
    pub async fn error(&self, token: &str, query: &str, variables: Value) -> (u16, Value) {
        let (status, body) = self.post(token, query, variables).await;
        assert!(body["errors"].is_array(), "{query} should fail: {body}");
        (status, body["errors"][0].clone())
    }

    /// An operator's mutation with the bootstrap token; it must be ACCEPTED.
    pub async fn admin(&self, mutation: &str) {
        let data = self.ok(ADMIN, mutation, json!({})).await;
        let receipt = data.as_object().and_then(|d| d.values().next()).cloned();
        assert_eq!(
            receipt.as_ref().map(|r| r["status"].clone()),
            Some(json!("ACCEPTED")),
            "{mutation}: {data}"
        );
    }

    /// Two assets and a market of `base`/`quote` (tick 0.01, maker 0.1%, taker 0.2%).
    pub async fn market(&self, base: (&str, u8), quote: (&str, u8), lot: &str, min_notional: &str) {
        for (code, scale) in [base, quote] {
            self.admin(&format!(
                "mutation {{ createAsset(code: \"{code}\", scale: {scale}) {{ status }} }}"
            ))
            .await;
        }
        let (base, quote) = (base.0, quote.0);
        self.admin(&format!(
            "mutation {{ createMarket(input: {{ symbol: \"{base}-{quote}\", base: \"{base}\", quote: \"{quote}\",
            tickSize: \"0.01\", lotSize: \"{lot}\", minNotional: \"{min_notional}\", makerFeePpm: 1000, takerFeePpm: 2000 }}) {{ status reason }} }}"
        ))
        .await;
    }

    pub async fn deposit(&self, account: u64, asset: &str, amount: &str) {
        self.admin(&format!(
            "mutation {{ deposit(account: {account}, asset: \"{asset}\", amount: \"{amount}\", reference: \"d-{account}-{asset}\") {{ status }} }}"
        ))
        .await;
    }

    /// A new API key's token (`role` TRADER needs an account).
    pub async fn key(&self, role: &str, account: Option<u64>) -> String {
        let account = account
            .map(|a| format!(", account: {a}"))
            .unwrap_or_default();
        let q = format!("mutation {{ createApiKey(role: {role}{account}) {{ token }} }}");
        let v = self.ok(ADMIN, &q, json!({})).await;
        v["createApiKey"]["token"].as_str().unwrap().to_string()
    }

    /// A `graphql-transport-ws` connection to `/graphql/ws`, initialised with
    /// `token` and acknowledged.
    pub async fn websocket(&self, token: &str) -> Ws {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/graphql/ws", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            init.to_string().into(),
        ))
        .await
        .unwrap();
        let ack = ws.next().await.unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
        ws
    }

    pub fn commands_on_log(&self) -> u64 {
        self.records_on_log("commands")
    }

    pub fn events_on_log(&self) -> u64 {
        self.records_on_log("events")
    }

    fn records_on_log(&self, name: &str) -> u64 {
        let log = tape_log::FileLog::follow(self.data.path().join(name)).unwrap();
        let rt = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            rt.block_on(async { tape_log::Log::end_offset(&log).await.unwrap() })
        })
    }
}

/// Kills a child process when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Fresh topics on the broker the README's test command starts (`TAPE_KAFKA_BROKERS`).
pub struct KafkaTopics {
    pub brokers: String,
    pub commands: String,
    pub events: String,
}

impl KafkaTopics {
    /// `<prefix>-commands-<nanos>` and `<prefix>-events-<nanos>`.
    pub fn fresh(prefix: &str) -> KafkaTopics {
        let brokers = std::env::var("TAPE_KAFKA_BROKERS").unwrap_or_else(|_| {
            panic!("TAPE_KAFKA_BROKERS is not set: this test needs a broker. Run ./scripts/test.sh, which starts one (tansu) and sets it.")
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        KafkaTopics {
            brokers,
            commands: format!("{prefix}-commands-{nanos}"),
            events: format!("{prefix}-events-{nanos}"),
        }
    }

    /// `--kafka B --commands-topic C --events-topic E`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--kafka".to_string(),
            self.brokers.clone(),
            "--commands-topic".into(),
            self.commands.clone(),
            "--events-topic".into(),
            self.events.clone(),
        ]
    }

    /// `tape gateway` (projector + GraphQL) on these topics, with its own views.
    pub fn gateway(&self) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut args = vec![
            "gateway".to_string(),
            "--data".into(),
            data.path().display().to_string(),
        ];
        args.extend(self.args());
        Server::spawn(args, data)
    }

    /// `tape engine` on these topics (and a control topic of their own), its
    /// snapshots in `dir`. `--open`:
    /// the tests set up with the gateway's bootstrap token, whose commands are
    /// unsigned (`tape init` starts a log that needs none of that: `secure_kafka.rs`).
    pub fn engine(&self, dir: &std::path::Path, stderr: Stdio) -> Proc {
        Proc(
            Command::new(TAPE)
                .arg("engine")
                .args(self.args())
                .args(["--control-topic", &format!("{}.control", self.events)])
                .args(["--open", "--data"])
                .arg(dir)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        )
    }
}

/// The records of `log` from offset 0 to `end` (its end offset when `None`), as
/// bytes, in order; waits up to two minutes for them.
pub async fn log_records<L: tape_log::Log>(log: &L, end: Option<u64>) -> Vec<Vec<u8>> {
    let end = match end {
        Some(end) => end,
        None => log.end_offset().await.unwrap(),
    };
    tape_log::read_exactly(log, 0, end, std::time::Duration::from_secs(120))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.bytes)
        .collect()
}
