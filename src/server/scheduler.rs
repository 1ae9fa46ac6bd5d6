//! The scheduler: one thread owns the engine's batch and runs it, so that concurrent requests
//! share forward passes (continuous batching: prefill chunks and decode steps of different
//! requests in the same pass). The engine is batch-invariant, so each output is bit-identical to
//! the same request run alone. Finished completions are signed and stored by a second thread,
//! off the batch's critical path (the next forward pass does not wait for an fsync or a
//! PostgreSQL round trip), and a reply is sent only once its transcript is durable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sworn_attest::{OperatorBinding, OperatorKey, Transcript};
use sworn_engine::batcher::{Batcher, Event};
use sworn_engine::commit::ModelManifest;
use sworn_engine::{Engine, Request};
use tokio::sync::mpsc::UnboundedSender;

use super::auth::Caller;

use super::metrics::Metrics;
use crate::attestation::{now_ms, sign_completion};
use crate::store::Store;

/// What a client hears about its request.
#[derive(Debug)]
pub enum Update {
    /// A token was sampled: the output text it settled (for streaming; may be empty while a
    /// possible stop string or an incomplete character is held back), and its logprobs when
    /// the request asked for them.
    Token {
        token: u32,
        text: String,
        logprobs: Option<sworn_engine::logprobs::StepLogprobs>,
    },
    /// Done: the signed transcript, already stored.
    Done(Box<Transcript>),
    /// The request was refused as invalid (a client error).
    Rejected(String),
    /// The server failed to complete it (a server error).
    Failed(String),
    /// The completion ran but its transcript could not be stored, so it is not acknowledged
    /// (HTTP 503 `store_unavailable`: the client may retry).
    StoreFailed(String),
    /// The server's shutdown grace period ended before the completion did: no transcript was
    /// issued (HTTP 503 `shutting_down`, or an error event on a stream).
    ShuttingDown(String),
}

/// A request handed to the scheduler.
pub struct Job {
    /// The request's id, under which its transcript is stored.
    pub id: String,
    pub req: Request,
    /// The prompt's tokens, as the HTTP side computed them to check limits.
    pub prompt_tokens: Vec<u32>,
    /// The request's grammar, compiled by the HTTP side (compiling is not the batch's work).
    pub constraint: Option<sworn_engine::grammar::Constraint>,
    pub updates: UnboundedSender<Update>,
    pub enqueued: Instant,
    /// The API key whose request this is: charged its tokens, and owner of its transcript.
    pub caller: Option<Arc<Caller>>,
}

/// What the scheduler shares with the HTTP side.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub manifest: ModelManifest,
    pub key: OperatorKey,
    /// The operator's registration, named in every transcript (`docs/anchoring.md` 1.1).
    pub binding: Option<OperatorBinding>,
    pub store: Store,
    pub metrics: Metrics,
    /// Requests accepted and not yet finished (queued or generating).
    pub in_flight: AtomicUsize,
    /// What goes into each pass, so that a long prompt does not stall others' decoding.
    pub policy: sworn_engine::schedule::Policy,
    /// Set when the shutdown grace period is over: running and queued requests end with
    /// [`Update::ShuttingDown`], unacknowledged, and the scheduler stops.
    pub cut_off: std::sync::atomic::AtomicBool,
}

/// A request the batch is working on.
struct Live {
    id: u64,
    name: String,
    req: Request,
    updates: UnboundedSender<Update>,
    enqueued: Instant,
    caller: Option<Arc<Caller>>,
}

/// Runs until `jobs` is closed and every accepted request has finished (and its transcript is
/// stored and acknowledged).
pub fn run(shared: Arc<Shared>, jobs: Receiver<Job>) {
    let (finished, to_finish) = std::sync::mpsc::channel::<(Live, sworn_engine::Completion)>();
    let finisher = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("sworn-finish".into())
            .spawn(move || {
                for (l, c) in to_finish {
                    finish(&shared, l, c);
                }
            })
    };
    if let Err(e) = &finisher {
        tracing::warn!(error = %e, "no finishing thread: transcripts are stored by the batch's");
    }
    run_batch(&shared, &jobs, &finished);
    // Every completion handed over is stored and acknowledged before the scheduler stops.
    drop(finished);
    if let Ok(h) = finisher {
        let _ = h.join();
    }
    tracing::info!("scheduler stopped");
}

/// The batch loop: admits jobs, runs forward passes, streams tokens, and hands finished
/// completions to the finishing thread (or, without one, finishes them itself).
fn run_batch(
    shared: &Shared,
    jobs: &Receiver<Job>,
    finished: &std::sync::mpsc::Sender<(Live, sworn_engine::Completion)>,
) {
    let mut batch = Batcher::with_policy(&shared.engine, shared.policy);
    let mut live: Vec<Live> = Vec::new();
    let mut open = true;
    while open || !batch.is_idle() {
        if shared.cut_off.load(Ordering::SeqCst) {
            cut_off(shared, &mut batch, &mut live, jobs);
            break;
        }
        // Admit new work: wait for it when idle, otherwise take what is there.
        loop {
            let next = if batch.is_idle() && open {
                match jobs.recv_timeout(Duration::from_millis(200)) {
                    Ok(j) => Some(j),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        None
                    }
                }
            } else {
                jobs.try_recv().ok()
            };
            let Some(job) = next else { break };
            shared
                .metrics
                .queue_wait
                .observe(job.enqueued.elapsed().as_secs_f64());
            match batch.submit_prepared(job.req.clone(), job.prompt_tokens, job.constraint) {
                Ok(id) => live.push(Live {
                    id,
                    name: job.id,
                    req: job.req,
                    updates: job.updates,
                    enqueued: job.enqueued,
                    caller: job.caller,
                }),
                Err(e) => {
                    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                    let _ = job.updates.send(Update::Rejected(e.to_string()));
                }
            }
        }
        // Clients that went away cancel their work.
        live.retain(|l| {
            if l.updates.is_closed() {
                batch.cancel(l.id);
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                shared.metrics.cancelled.inc();
                false
            } else {
                true
            }
        });
        if batch.is_idle() {
            continue;
        }
        shared.metrics.batch_size.observe(batch.active() as f64);
        let started = Instant::now();
        let events = match batch.step() {
            Ok(ev) => ev,
            Err(e) => {
                // A failed pass fails the requests in it; the server keeps serving.
                tracing::error!(error = %e, "forward pass failed");
                for l in live.drain(..) {
                    batch.cancel(l.id);
                    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                    let _ = l.updates.send(Update::Failed(e.to_string()));
                }
                continue;
            }
        };
        let took = started.elapsed();
        shared.metrics.pass.observe(took.as_secs_f64());
        let shape = batch.last_pass();
        tracing::debug!(
            ms = took.as_secs_f64() * 1e3,
            decoding = shape.decoding,
            prompts = shape.prompts,
            prompt_tokens = shape.prompt_tokens,
            "pass"
        );
        for ev in events {
            match ev {
                Event::Token {
                    id,
                    text,
                    token,
                    logprobs,
                    ..
                } => {
                    shared.metrics.tokens_out.inc();
                    if let Some(l) = live.iter().find(|l| l.id == id) {
                        if !text.is_empty() || logprobs.is_some() {
                            let _ = l.updates.send(Update::Token {
                                token,
                                text,
                                logprobs,
                            });
                        }
                    }
                }
                Event::Finished { id, completion } => {
                    if let Some(pos) = live.iter().position(|l| l.id == id) {
                        if let Err(std::sync::mpsc::SendError((l, c))) =
                            finished.send((live.swap_remove(pos), completion))
                        {
                            finish(shared, l, c);
                        }
                    }
                }
                Event::Failed { id, error } => {
                    if let Some(pos) = live.iter().position(|l| l.id == id) {
                        let l = live.swap_remove(pos);
                        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                        tracing::warn!(request = %l.name, %error, "generation failed");
                        let _ = l.updates.send(Update::Failed(error));
                    }
                }
            }
        }
    }
}

/// Ends every running and queued request with [`Update::ShuttingDown`]: past the grace period
/// nothing more is acknowledged (and nothing acknowledged is affected: it is already stored).
fn cut_off(shared: &Shared, batch: &mut Batcher<'_>, live: &mut Vec<Live>, jobs: &Receiver<Job>) {
    let why = "the server is shutting down: the completion was cut off at the end of its \
               shutdown grace period; no transcript was issued";
    for l in live.drain(..) {
        batch.cancel(l.id);
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        shared.metrics.cancelled.inc();
        let _ = l.updates.send(Update::ShuttingDown(why.into()));
    }
    while let Ok(job) = jobs.try_recv() {
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let _ = job.updates.send(Update::ShuttingDown(why.into()));
    }
    tracing::warn!("shutdown grace period over: running requests cut off");
}

/// Prompt plus completion tokens: what a key's token rate is charged.
fn c_tokens(t: &Transcript) -> usize {
    t.request.prompt_tokens.len() + t.output.tokens.len()
}

/// Signs and durably stores a finished completion, then replies.
fn finish(shared: &Shared, l: Live, c: sworn_engine::Completion) {
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    let t = sign_completion(
        &shared.engine,
        &shared.manifest,
        &l.req,
        &c,
        &shared.key,
        shared.binding.as_ref(),
    );
    let owner = l.caller.as_ref().map(|c| c.owner.as_str());
    if let Some(c) = &l.caller {
        c.charge(c_tokens(&t) as u64);
    }
    match shared.store.put_owned(&l.name, &t, now_ms(), owner) {
        Ok(()) => {
            shared.metrics.completed.inc();
            shared
                .metrics
                .prompt_tokens
                .add(c.prompt_tokens.len() as u64);
            shared
                .metrics
                .latency
                .observe(l.enqueued.elapsed().as_secs_f64());
            let _ = l.updates.send(Update::Done(Box::new(t)));
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a transcript failed");
            let _ = l.updates.send(Update::StoreFailed(format!(
                "the attestation could not be stored: {e}"
            )));
        }
    }
}
