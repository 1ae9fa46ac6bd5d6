// What the browser tests share: their pass/fail tally, and the Chromium they drive.
import puppeteer from "puppeteer-core";

let passed = 0;
let failed = 0;

/** Records and prints one check. */
export function check(what, ok, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
}

/** Prints the tally as the last line and exits non-zero on any failure. */
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

/** Headless Chromium at `executablePath`, with the flags this closed network needs. */
export function launch(executablePath) {
  return puppeteer.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
