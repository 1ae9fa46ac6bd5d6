//! `sworn serve`: an OpenAI-compatible HTTP server in which every completion is attested.
//!
//! Layout: `api` (HTTP handlers and OpenAI shapes), `scheduler` (one thread running the engine's
//! continuous batch), `metrics` (Prometheus). The durable store of transcripts and the anchor
//! log are [`crate::store`] (the CLI's `anchor` and `proof` use them without a server); the
//! server uses [`crate::chain`] to anchor, never the other way round.
//! Shutdown on SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish, stop the
//! scheduler, checkpoint the store.

pub mod api;
pub mod auth;
pub mod chat_page;
pub mod logprobs;
pub mod metrics;
pub mod scheduler;
pub mod structured;
pub mod verify_page;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use sworn_attest::{OperatorBinding, OperatorKey};
use sworn_engine::{Engine, EngineOptions};

use crate::store;
use scheduler::{Job, Shared};

/// Limits on what clients may ask, and on how long and how many they may hold on.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_prompt_tokens: usize,
    /// Bytes of prompt text (all messages' roles and contents) accepted before tokenizing:
    /// tokenizing is linear, but bounded before it runs.
    pub max_prompt_bytes: usize,
    pub max_output_tokens: u32,
    /// Requests queued or running at once; more get 429 with Retry-After.
    pub max_queue: usize,
    pub max_body_bytes: usize,
    /// From accepting a request to its result (or, streaming, its last event); past it the
    /// request is cancelled.
    pub request_timeout: Duration,
    /// A connection must send a request's headers within this (slowloris).
    pub header_timeout: Duration,
    /// A request's body must arrive whole within this (408 otherwise).
    pub body_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// After SIGTERM or Ctrl-C, how long running completions may take to finish before they
    /// are cut off (not acknowledged, so nothing acknowledged is lost).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_prompt_tokens: 4096,
            max_prompt_bytes: 128 << 10,
            max_output_tokens: 2048,
            max_queue: 64,
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(300),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// Everything `sworn serve` needs.
pub struct Config {
    pub model: PathBuf,
    pub key: OperatorKey,
    /// The operator's registration (DATA_DIR/operator-binding.json), named in every transcript.
    /// With `anchor`, it is the anchoring wallet's, checked against the chain at start.
    pub binding: Option<OperatorBinding>,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The transcript store (`--store`; default `DATA_DIR/sworn.db`).
    pub store: store::Location,
    pub threads: usize,
    /// Where the forward pass runs.
    pub device: sworn_engine::DeviceKind,
    pub limits: Limits,
    /// What goes into each forward pass (`--prefill-chunk`, `--pass-budget`).
    pub policy: sworn_engine::schedule::Policy,
    /// Anchor the store's new transcripts on chain periodically (`--anchor-every`).
    pub anchor: Option<AutoAnchor>,
    /// Serve `/v1/attestations/{digest}` as well as by request id (`--attestations-by-digest`).
    /// Off by default: digests are public once disputed on chain, request ids are not.
    pub attestations_by_digest: bool,
    /// The verify page's folder (`scripts/build-web.sh`), served at `/verify/`.
    pub verify_dir: Option<PathBuf>,
    /// API keys (`--api-keys`); without them the server serves loopback only.
    pub keys: Option<auth::ApiKeys>,
    /// Endpoint groups open without a key (`--public`), when keys are required.
    pub public: Vec<String>,
}

/// Periodic anchoring by the server itself: what `sworn anchor` does, every `every`.
pub struct AutoAnchor {
    pub chain: crate::chain::commands::ChainArgs,
    pub every: std::time::Duration,
    pub max_batch: usize,
}

/// State the handlers share.
pub struct AppState {
    pub shared: Arc<Shared>,
    pub jobs: Sender<Job>,
    pub model_id: String,
    pub limits: Limits,
    /// Tokenizations running at once (on blocking threads, never on the async ones).
    pub tokenizers: Arc<tokio::sync::Semaphore>,
    /// Attestations are looked up by digest too.
    pub attestations_by_digest: bool,
    /// The verify page's folder (`--verify-dir`), served at `/verify/`.
    pub verify_dir: Option<PathBuf>,
    /// API keys, when required.
    pub keys: Option<auth::ApiKeys>,
    /// Endpoint groups open without a key.
    pub public: Vec<String>,
}

/// The name clients use for the model: the file name without `.gguf`, lowercased.
fn model_id(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_else(|| "model".into())
}

/// Builds the router (exposed for tests that bind their own listener).
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.limits.max_body_bytes;
    let body_timeout = state.limits.body_timeout;
    Router::new()
        .route("/v1/completions", post(api::completions))
        .route("/v1/chat/completions", post(api::chat_completions))
        .route("/v1/models", get(api::models))
        .route("/v1/attestations/{id}", get(api::attestation))
        .route("/v1/attestations/{id}/proof", get(api::attestation_proof))
        .route("/v1/operator", get(api::operator))
        .route("/", get(chat_page::index))
        .route("/chat.js", get(chat_page::script))
        .route("/verify", get(verify_page::redirect))
        .route("/verify/", get(verify_page::index))
        .route("/verify/{file}", get(verify_page::file))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                api::read_body_in_time(req, next, max_body, body_timeout)
            },
        ))
        // Outermost: a caller without a valid key is refused before its body is read.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::authenticate,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// On every response: no content sniffing and no framing by other sites (the pages also say
/// `frame-ancestors 'none'` in their Content-Security-Policy; `X-Frame-Options` covers older
/// browsers and any page that has none).
async fn security_headers(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn serve(cfg: Config) -> Result<()> {
    if cfg.keys.is_none() && !cfg.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen {}: without --api-keys the server serves this machine only (loopback); \
             give it --api-keys FILE (sworn api-key add) to serve others",
            cfg.listen
        );
    }
    store::private_dir(&cfg.data_dir)?;
    let store = store::Store::open_at(&cfg.store)?;
    tracing::info!(store = %cfg.store.describe(), "transcript store open");
    let opts = EngineOptions {
        threads: cfg.threads,
        device: cfg.device,
        ..Default::default()
    };
    let (engine, manifest) = Engine::load_with_manifest(&cfg.model, &opts)
        .with_context(|| format!("loading {}", cfg.model.display()))?;
    release_free_memory();
    let engine = Arc::new(engine);
    // Checked before serving: a misconfigured chain stops the start, not the first anchoring.
    let mut binding = cfg.binding;
    let anchoring = match cfg.anchor {
        Some(a) => {
            let prepared = prepare_anchoring(a, &store, &cfg.key).await?;
            if binding.is_some_and(|b| b != prepared.binding) {
                anyhow::bail!(
                    "the anchoring wallet's registration differs from the one recorded in {}",
                    crate::attestation::binding_path(&cfg.data_dir).display()
                );
            }
            binding = Some(prepared.binding);
            Some(prepared)
        }
        None => None,
    };
    match &binding {
        Some(b) => tracing::info!(chain_id = b.chain_id, operator = %sworn_attest::hexser::encode(&b.address), "transcripts name the operator's registration"),
        None => eprintln!("sworn: not registered on chain: transcripts name no operator (sworn registry register)"),
    }
    let shared = Arc::new(Shared {
        engine,
        manifest,
        key: cfg.key,
        binding,
        store,
        metrics: Default::default(),
        in_flight: AtomicUsize::new(0),
        policy: cfg.policy,
        cut_off: std::sync::atomic::AtomicBool::new(false),
    });
    let (jobs, rx) = mpsc::channel();
    let sched = {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sworn-scheduler".into())
            .spawn(move || scheduler::run(s, rx))?
    };
    let tokenizers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let state = Arc::new(AppState {
        shared: shared.clone(),
        jobs,
        model_id: model_id(&cfg.model),
        limits: cfg.limits,
        tokenizers: Arc::new(tokio::sync::Semaphore::new(tokenizers)),
        attestations_by_digest: cfg.attestations_by_digest,
        verify_dir: cfg.verify_dir.clone(),
        keys: cfg.keys,
        public: cfg.public,
    });
    let anchoring = anchoring.map(|p| spawn_anchoring(p, shared.clone()));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    tracing::info!(addr = %listener.local_addr()?, model = %state.model_id, "serving");
    match &state.keys {
        None => eprintln!("sworn: no --api-keys: serving loopback only, to anyone on this machine"),
        Some(_) => eprintln!(
            "sworn: API keys required (public without a key: {})",
            if state.public.is_empty() {
                "nothing".to_string()
            } else {
                state.public.join(", ")
            }
        ),
    }
    eprintln!(
        "sworn: serving {} on http://{}",
        state.model_id,
        listener.local_addr()?
    );
    let limits = state.limits.clone();
    // The first signal stops accepting and starts the grace period; when it is over, running
    // completions are cut off; a second signal exits at once.
    let signalled = Arc::new(tokio::sync::Notify::new());
    let first = {
        let s = signalled.clone();
        async move {
            shutdown_signal().await;
            s.notify_one();
        }
    };
    let grace = limits.shutdown_grace;
    let watcher = tokio::spawn({
        let shared = shared.clone();
        async move {
            signalled.notified().await;
            eprintln!(
                "sworn: shutting down: running completions have {}s to finish (a second signal exits now)",
                grace.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(grace) => {
                    eprintln!("sworn: grace period over: cutting off running completions (not acknowledged)");
                    shared.cut_off.store(true, std::sync::atomic::Ordering::SeqCst);
                    shutdown_signal().await;
                }
                _ = shutdown_signal() => {}
            }
            // Nothing is acknowledged before it is durable, so exiting loses nothing acknowledged.
            eprintln!("sworn: second signal: exiting now");
            std::process::exit(130);
        }
    });
    serve_connections(listener, router(state), &limits, first).await;
    if let Some(task) = anchoring {
        task.abort();
    }
    // The router (and with it the job sender) is gone: the scheduler finishes what it has (or,
    // past the grace period, cuts it off).
    shared
        .cut_off
        .store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::task::spawn_blocking(move || sched.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the scheduler panicked"))?;
    watcher.abort();
    shared.store.checkpoint()?;
    eprintln!("sworn: stopped cleanly");
    Ok(())
}

/// Anchoring checked and ready to run: the lease if taken, the chain, and the registration it
/// anchors as.
struct PreparedAnchoring {
    lease: Option<store::AnchorLease>,
    chain: crate::chain::client::Chain,
    binding: OperatorBinding,
    every: Duration,
    max_batch: usize,
}

/// Connects, checks that the wallet is an active operator registered with this server's key,
/// and tries to take the store's anchoring lease (so a manual `sworn anchor` cannot race it).
/// On SQLite a held lease stops the start (another process anchors this data directory); on
/// PostgreSQL another replica holds it, and this one stands by, trying again each round.
async fn prepare_anchoring(
    a: AutoAnchor,
    store: &store::Store,
    key: &OperatorKey,
) -> Result<PreparedAnchoring> {
    use crate::chain::anchoring::check_operator;
    let lease = store.anchoring_lease()?;
    if lease.is_none() {
        match store.location() {
            store::Location::Sqlite(p) => anyhow::bail!(
                "another `sworn anchor` (or a server anchoring with --anchor-every) is running on {}",
                p.display()
            ),
            store::Location::Postgres(_) => eprintln!(
                "sworn: another replica holds the anchoring lease; this one takes over if it stops"
            ),
        }
    }
    let chain = a.chain.connect(true).await?;
    let operator = chain.sender("anchoring")?;
    check_operator(&chain, operator, &key.public()).await?;
    Ok(PreparedAnchoring {
        lease,
        binding: chain.binding(operator),
        chain,
        every: a.every,
        max_batch: a.max_batch,
    })
}

/// Spawns the periodic anchoring task. Each round runs only while this server holds the
/// store's anchoring lease: a replica without it tries to take it each round (and so takes
/// over when the holder dies), and one whose lease lapsed (its PostgreSQL session dropped)
/// stops anchoring until it takes it again. Failures of one round are logged and retried next
/// round; what was planned stays recorded, and a pending batch left by a dead holder is
/// resolved against the chain first (`docs/anchoring.md` section 9.2).
fn spawn_anchoring(p: PreparedAnchoring, shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    use crate::chain::anchoring::anchor_store;
    let key = shared.key.public();
    tracing::info!(every_s = p.every.as_secs(), registry = %p.chain.registry_hex(), "anchoring");
    let mut lease = p.lease;
    tokio::spawn(async move {
        let metrics = &shared.metrics;
        loop {
            metrics
                .anchoring
                .store(lease.is_some(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(p.every).await;
            if lease.as_ref().is_some_and(|l| !l.held()) {
                eprintln!("sworn: lost the anchoring lease (store session ended); standing by");
                lease = None;
            }
            if lease.is_none() {
                match shared.store.anchoring_lease() {
                    Ok(Some(l)) => {
                        eprintln!("sworn: took the anchoring lease: this replica anchors now");
                        lease = Some(l);
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!("taking the anchoring lease failed: {e}");
                        continue;
                    }
                }
            }
            metrics
                .anchoring
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let Some(held) = lease.as_ref() else { continue };
            match anchor_store(&p.chain, &shared.store, &key, p.max_batch, held).await {
                Ok(run) => {
                    for b in &run.anchored {
                        metrics.anchored_batches.inc();
                        tracing::info!(batch = ?b.batch, size = b.size, "anchored");
                    }
                }
                Err(e) => tracing::warn!("anchoring failed (retried next round): {e:#}"),
            }
        }
    })
}

/// Accepts connections until `shutdown`, then waits for the open ones to finish their requests.
/// Unlike `axum::serve`, it bounds what a client can hold: at most `max_connections` at once
/// (the rest wait in the listen backlog), and a connection that has not sent a request's headers
/// within `header_timeout` is closed (slowloris); bodies are bounded by `api::read_body_in_time`.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1 only: the auto builder's HTTP/2 detection reads the first bytes with no deadline,
    // so a connection that sends nothing would never reach the header timeout.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, do not spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Streams end within the grace period (then they are cut off); idle and slow connections
    // get a few seconds more, then the server stops waiting for them.
    let bound = limits.shutdown_grace + Duration::from_secs(5);
    if tokio::time::timeout(bound, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {bound:?} after shutdown began: closing them");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Hands the allocator's free memory back to the system. Loading runs on two threads (weights,
/// and the manifest's hashing), so glibc gives each its own arena, and what the hashing thread
/// freed (its parsed metadata, tens of MB for a large vocabulary) would otherwise stay resident
/// for the server's whole life, under every later peak.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; no allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}
