//! `sworn serve`: the options of the HTTP server, turned into its configuration.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use sworn::attestation;
use sworn::chain;

use super::{data_dir, signing_key, DeviceArg};

#[derive(Args)]
pub struct ServeArgs {
    /// GGUF model file [default: the cached SmolLM2-135M-Instruct].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Operator signing key [default: DATA_DIR/operator.key, created on first start].
    #[arg(long)]
    key: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The data directory: operator key, registration, and the default store [default: DATA_DIR].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The transcript store [default: DATA_DIR/sworn.db]: postgres://USER@HOST:PORT/DATABASE
    /// for one store shared by several replicas (docs/deploy.md), or sqlite:PATH. Prefer the
    /// environment variable for a URL holding a password (the command line is visible to ps).
    #[arg(long, env = "SWORN_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Kernel threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Where the forward pass runs (cuda: NVIDIA GPU 0; needs a build with --features cuda
    /// and the driver). The output does not depend on it.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Requests queued or running at once; beyond it clients get 429.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Longest prompt accepted, in tokens.
    #[arg(long, default_value_t = 4096)]
    max_prompt_tokens: usize,
    /// Largest max_tokens accepted.
    #[arg(long, default_value_t = 2048)]
    max_output_tokens: u32,
    /// Longest prompt accepted, in bytes of text (checked before tokenizing).
    #[arg(long, default_value_t = 128 * 1024)]
    max_prompt_bytes: usize,
    /// Seconds a request may take (streaming included); past it the request is cancelled.
    #[arg(long, default_value_t = 300)]
    request_timeout: u64,
    /// Seconds a connection has to send a request's headers.
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a request's body has to arrive whole (408 otherwise).
    #[arg(long, default_value_t = 30)]
    body_timeout: u64,
    /// Connections open at once (more wait in the listen backlog).
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Seconds running completions may take to finish after SIGTERM or Ctrl-C; past it they
    /// end with an error naming the shutdown and are not acknowledged. A second signal exits
    /// at once. (Kubernetes kills 30 s after SIGTERM.)
    #[arg(long, default_value_t = 25)]
    shutdown_grace: u64,
    /// Also serve /v1/attestations/{digest} (by default only by the unguessable request id:
    /// digests become public when a transcript is disputed on chain).
    #[arg(long)]
    attestations_by_digest: bool,
    /// Require `Authorization: Bearer KEY` with a key from this file (`sworn api-key add`).
    /// Without it the server serves loopback only.
    #[arg(long)]
    api_keys: Option<PathBuf>,
    /// With --api-keys, the endpoint groups open without a key, comma-separated, from
    /// healthz, operator, metrics, models, verify, chat ("" for none).
    #[arg(long, default_value = "healthz,operator,verify,chat")]
    public: String,
    /// Serve the verify page (a folder built by scripts/build-web.sh) at /verify/.
    #[arg(long, env = "SWORN_VERIFY_DIR")]
    verify_dir: Option<PathBuf>,
    /// Most prompt tokens fed to one request per forward pass (prefill interleaved with
    /// decoding).
    #[arg(long, default_value_t = 256)]
    prefill_chunk: usize,
    /// Most work in one forward pass, in token units (a token's weight products; attention at
    /// long positions costs more): decoding requests always get their token, prompts share
    /// the rest, oldest first. 0: no budget. See docs/server.md "Scheduling".
    #[arg(long, default_value_t = 32)]
    pass_budget: usize,
    /// Anchor new transcripts on chain every this many seconds (as `sworn anchor` does; needs
    /// --rpc, --registry and a wallet).
    #[arg(long, requires_all = ["rpc", "registry"])]
    anchor_every: Option<u64>,
    /// With --anchor-every: the chain's JSON-RPC endpoint.
    #[arg(long, requires = "anchor_every")]
    rpc: Option<String>,
    /// With --anchor-every: the SwornRegistry contract.
    #[arg(long, requires = "anchor_every")]
    registry: Option<String>,
    /// With --anchor-every: file holding the operator's Ethereum key (mode 0600)
    /// [default: $SWORN_WALLET_KEY].
    #[arg(long, requires = "anchor_every")]
    wallet: Option<PathBuf>,
}

pub fn serve(a: ServeArgs) -> Result<i32> {
    let model = a.model.unwrap_or_else(sworn_engine::default_model_path);
    if !model.exists() {
        bail!(
            "model {} not found (run scripts/fetch-model.sh, or pass --model PATH)",
            model.display()
        );
    }
    // --data-dir holds this server's key: two servers with two data directories never share
    // one by accident (replicas that must share a key are given it with --key).
    let data_dir = a.data_dir.unwrap_or_else(data_dir);
    let key = signing_key(a.key, &data_dir.join("operator.key"))?;
    let store = sworn::store::Location::parse(a.store.as_deref(), &data_dir)?;
    let cfg = sworn::server::Config {
        store,
        binding: attestation::load_binding(&data_dir, &key.public())?,
        key,
        model,
        listen: a.listen,
        data_dir,
        device: a.device.into(),
        threads: a
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        limits: sworn::server::Limits {
            max_prompt_tokens: a.max_prompt_tokens,
            max_output_tokens: a.max_output_tokens,
            max_queue: a.max_queue.max(1),
            max_body_bytes: 1 << 20,
            max_prompt_bytes: a.max_prompt_bytes,
            request_timeout: std::time::Duration::from_secs(a.request_timeout.max(1)),
            header_timeout: std::time::Duration::from_secs(a.header_timeout.max(1)),
            body_timeout: std::time::Duration::from_secs(a.body_timeout.max(1)),
            max_connections: a.max_connections.max(1),
            shutdown_grace: std::time::Duration::from_secs(a.shutdown_grace),
        },
        attestations_by_digest: a.attestations_by_digest,
        verify_dir: a.verify_dir,
        keys: match &a.api_keys {
            Some(p) => Some(sworn::server::auth::ApiKeys::load(p)?),
            None => None,
        },
        public: {
            let groups: Vec<String> = a
                .public
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect();
            if let Some(g) = groups
                .iter()
                .find(|g| !sworn::server::auth::PUBLIC_GROUPS.contains(&g.as_str()))
            {
                anyhow::bail!(
                    "--public {g:?}: the groups are {}",
                    sworn::server::auth::PUBLIC_GROUPS.join(", ")
                );
            }
            groups
        },
        policy: sworn_engine::schedule::Policy {
            prefill_chunk: a.prefill_chunk.max(1),
            pass_budget: (a.pass_budget > 0).then_some(a.pass_budget),
        },
        anchor: match (a.anchor_every, a.rpc, a.registry) {
            (Some(every), Some(rpc), Some(registry)) => Some(sworn::server::AutoAnchor {
                chain: chain::commands::ChainArgs {
                    rpc,
                    registry,
                    wallet: a.wallet,
                },
                every: std::time::Duration::from_secs(every.max(1)),
                max_batch: 100_000,
            }),
            _ => None,
        },
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(sworn::server::serve(cfg))?;
    Ok(0)
}
