// Drives headless Chromium against a running daemon's status page for tests/status_page.rs.
//
//   node status_page.mjs BASE_URL BROADCAST OUT_DIR
//
// Prints one JSON object per line on stdout. Where the test must act on the world (kill nginx,
// delete the spec) it prints {"step":"act","what":...} and waits for a line on stdin; it then
// reports when the page showed the consequence ({"step":"seen","what":...,"at":ms}).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [base, name, outDir] = process.argv.slice(2);
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const card = `article[data-name="${name}"]`;

const profile = mkdtempSync(join(tmpdir(), "sipcast-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 860 },
  // The page forbids eval (its CSP); playwright's waitForFunction needs it.
  bypassCSP: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  let previewRequests = 0;
  page.on("request", (r) => { if (r.url().endsWith("/preview.mp4")) previewRequests++; });
  await page.goto(base + "/");

  // Without SSE (the request fails), the page polls /v1/broadcasts and still lists it.
  const fallback = await context.newPage();
  await fallback.route("**/v1/events", (route) => route.abort());
  await fallback.goto(base + "/");
  await fallback.waitForFunction((sel) => window.sipcastPage.mode === "polling" && document.querySelector(sel),
                                 card, { timeout: 10000, polling: 100 });
  say({ step: "polling", ...(await fallback.evaluate((sel) => ({
    mode: window.sipcastPage.mode, polls: window.sipcastPage.polls, events: window.sipcastPage.events,
    phase: document.querySelector(sel).dataset.phase,
  }), card)) });
  await fallback.close();

  // The broadcast is listed with its states (the test made it live before starting us).
  await page.waitForSelector(`${card}[data-phase="streaming"] tr.target[data-state="publishing"]`, { timeout: 15000 });
  const listed = await page.evaluate((sel) => {
    const c = document.querySelector(sel);
    const t = c.querySelector("tr.target");
    const cards = [...document.querySelectorAll("article")].map((a) => ({
      name: a.dataset.name, phase: a.dataset.phase, call: a.dataset.call,
      errors: [...a.querySelectorAll(".error")].map((e) => e.textContent),
      description: (a.querySelector(".desc") || {}).textContent || null,
      elements: a.querySelectorAll(".desc *, .error *, h2 *").length,
      text: a.innerText,
    }));
    return {
      phase: c.dataset.phase, call: c.dataset.call, target: t.dataset.state, showing: t.dataset.showing,
      text: c.innerText, mode: window.sipcastPage.mode, polls: window.sipcastPage.polls, cards,
    };
  }, card);
  say({ step: "listed", ...listed });

  // The preview plays: currentTime advances and the picture changes.
  const clicked = Date.now();
  await page.click(`${card} .preview button`);
  const video = `${card} video`;
  await page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    return v && v.currentTime > 0.5 && v.videoWidth > 0;
  }, video, { timeout: 20000, polling: 100 });
  const startup = Date.now() - clicked;
  // Two grabs of the picture 1.5 s apart, compared in the page (no pixels cross the wire).
  const grab = (sel) => page.evaluate((sel) => {
    const v = document.querySelector(sel);
    const canvas = document.createElement("canvas");
    canvas.width = v.videoWidth; canvas.height = v.videoHeight;
    const g = canvas.getContext("2d");
    g.drawImage(v, 0, 0);
    const px = g.getImageData(0, 0, canvas.width, canvas.height).data;
    const before = window.lastGrab;
    window.lastGrab = px;
    let changed = 0, sum = 0;
    for (let i = 0; i < px.length; i++) {
      if (i % 4 === 3) continue;
      sum += px[i];
      if (before && Math.abs(before[i] - px[i]) > 8) changed++;
    }
    const b = v.buffered;
    return { time: v.currentTime, width: v.videoWidth, height: v.videoHeight,
             behind: b.length ? b.end(b.length - 1) - v.currentTime : null,
             mean: sum / (px.length * 3 / 4), changed: changed / (px.length * 3 / 4) };
  }, sel);
  const first = await grab(video);
  await page.waitForTimeout(1500);
  const second = await grab(video);
  const changed = second.changed;
  const [shotTop] = [join(outDir, "status-page.png")];
  await page.screenshot({ path: shotTop, fullPage: true });
  say({
    step: "preview",
    t1: first.time, t2: second.time, startupMs: startup, behindLive: second.behind, width: first.width, height: first.height,
    mean1: first.mean, mean2: second.mean, changed,
    audioTracks: await page.evaluate((sel) => {
      const v = document.querySelector(sel);
      return v.audioTracks ? v.audioTracks.length : (v.mozHasAudio || v.webkitAudioDecodedByteCount > 0 ? 1 : 0);
    }, video),
    audioBytes: await page.evaluate((sel) => document.querySelector(sel).webkitAudioDecodedByteCount || 0, video),
    screenshot: shotTop,
  });

  // The call's video ends (the pcap is over): the output switches to the slate, and the
  // preview follows in the same stream (a new init segment, no reconnect).
  await page.waitForSelector(`${card} tr.target[data-showing="slate"]`, { timeout: 20000, polling: 100 });
  const switched = Date.now();
  await page.waitForTimeout(500);
  const onSlate = await grab(video);
  await page.waitForTimeout(2000);
  const later = await grab(video);
  say({ step: "slate", sinceSwitchMs: Date.now() - switched, requests: previewRequests,
        t1: onSlate.time, t2: later.time, width: later.width, height: later.height, behindLive: later.behind });
  await page.screenshot({ path: join(outDir, "status-page-slate.png"), fullPage: true });

  // A state change reaches the page through SSE.
  say({ step: "act", what: "target-down" });
  await lines.next();
  await page.waitForSelector(`${card} tr.target:not([data-state="publishing"])`, { timeout: 10000, polling: "raf" });
  say({
    step: "seen", what: "target-down", at: Date.now(),
    target: await page.getAttribute(`${card} tr.target`, "data-state"),
    mode: await page.evaluate(() => window.sipcastPage.mode),
    polls: await page.evaluate(() => window.sipcastPage.polls),
  });
  await page.screenshot({ path: join(outDir, "status-page-target-down.png"), fullPage: true });

  say({ step: "act", what: "spec-deleted" });
  await lines.next();
  await page.waitForSelector(card, { state: "detached", timeout: 10000, polling: "raf" });
  say({ step: "seen", what: "removed", at: Date.now(),
        mode: await page.evaluate(() => window.sipcastPage.mode),
        polls: await page.evaluate(() => window.sipcastPage.polls) });
  say({ step: "done", problems });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
