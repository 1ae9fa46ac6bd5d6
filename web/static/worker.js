// Runs the sworn-web module off the page's thread, so that a replay (seconds to minutes) keeps
// the page responsive and its progress bar moving. Messages in: {kind: "verify" | "replay",
// transcript, key?, model?, check?}; out (with the message's `check`, for a caller that has
// several in flight): {kind: "verified" | "progress" | "replayed" | "failed", ...}.
import init, { verify, replay } from "./sworn_web.js";

const ready = init();

self.onmessage = async (event) => {
  const m = event.data;
  try {
    await ready;
    if (m.kind === "verify") {
      const result = JSON.parse(verify(new Uint8Array(m.transcript), m.key));
      self.postMessage({ kind: "verified", check: m.check, result });
    } else if (m.kind === "replay") {
      const start = performance.now();
      const progress = (stage, done, total) =>
        self.postMessage({ kind: "progress", stage, done, total });
      const result = JSON.parse(
        replay(new Uint8Array(m.transcript), new Uint8Array(m.model), progress),
      );
      result.seconds = (performance.now() - start) / 1000;
      self.postMessage({ kind: "replayed", result });
    }
  } catch (e) {
    self.postMessage({ kind: "failed", check: m.check, reason: String(e && e.message ? e.message : e) });
  }
};
