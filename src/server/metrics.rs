//! Prometheus metrics in the text exposition format: counters and fixed-bucket histograms on
//! atomics, cheap enough for the scheduler's hot loop.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram with fixed upper bounds.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum in microunits, to stay on integer atomics.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micro
            .fetch_add((v.max(0.0) * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

const SECONDS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const PASS_SECONDS: &[f64] = &[0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0];
const SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Everything `/metrics` reports.
pub struct Metrics {
    pub requests: Counter,
    pub rejected: Counter,
    pub completed: Counter,
    pub cancelled: Counter,
    pub prompt_tokens: Counter,
    pub tokens_out: Counter,
    pub latency: Histogram,
    pub queue_wait: Histogram,
    pub batch_size: Histogram,
    /// Each forward pass's wall time: what every request in it waits between two tokens.
    pub pass: Histogram,
    /// 1 while this server holds the store's anchoring lease (one replica at a time).
    pub anchoring: std::sync::atomic::AtomicBool,
    pub anchored_batches: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Counter::default(),
            rejected: Counter::default(),
            completed: Counter::default(),
            cancelled: Counter::default(),
            prompt_tokens: Counter::default(),
            tokens_out: Counter::default(),
            latency: Histogram::new(SECONDS),
            queue_wait: Histogram::new(SECONDS),
            batch_size: Histogram::new(SIZES),
            pass: Histogram::new(PASS_SECONDS),
            anchoring: Default::default(),
            anchored_batches: Counter::default(),
        }
    }
}

impl Metrics {
    /// The exposition text; `queue_depth` is sampled by the caller.
    pub fn render(&self, queue_depth: usize) -> String {
        let mut o = String::new();
        for (name, help, c) in [
            (
                "sworn_requests_total",
                "Completion requests received.",
                &self.requests,
            ),
            (
                "sworn_requests_rejected_total",
                "Requests refused (bad input, queue full).",
                &self.rejected,
            ),
            (
                "sworn_completions_total",
                "Completions finished, signed and stored.",
                &self.completed,
            ),
            (
                "sworn_requests_cancelled_total",
                "Requests whose client went away.",
                &self.cancelled,
            ),
            (
                "sworn_prompt_tokens_total",
                "Prompt tokens of finished completions.",
                &self.prompt_tokens,
            ),
            (
                "sworn_generated_tokens_total",
                "Tokens sampled.",
                &self.tokens_out,
            ),
            (
                "sworn_anchored_batches_total",
                "Batches this server anchored on chain.",
                &self.anchored_batches,
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.get()
            );
        }
        let _ = writeln!(
            o,
            "# HELP sworn_queue_depth Requests accepted and not finished.\n# TYPE sworn_queue_depth gauge\nsworn_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            o,
            "# HELP sworn_anchoring 1 while this server holds the store's anchoring lease.\n# TYPE sworn_anchoring gauge\nsworn_anchoring {}",
            u8::from(self.anchoring.load(Ordering::Relaxed))
        );
        self.latency.render(
            &mut o,
            "sworn_request_seconds",
            "Time from acceptance to the signed result.",
        );
        self.queue_wait.render(
            &mut o,
            "sworn_queue_wait_seconds",
            "Time a request waited to join the batch.",
        );
        self.batch_size
            .render(&mut o, "sworn_batch_size", "Requests in each forward pass.");
        self.pass.render(
            &mut o,
            "sworn_pass_seconds",
            "Wall time of each forward pass (the wait between a stream's tokens).",
        );
        o
    }
}
