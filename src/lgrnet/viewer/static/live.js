// The live page: polls /api/live/status, loads the newest frame when one is ready, shows the
// readouts and the run's state (running, ended, failed, stopped, or the server gone).
const POLL_MS = 100;
const $ = (id) => document.getElementById(id);
const img = $("frame");
let shownFrame = null;
let loading = false;
let done = false;
let failures = 0;

function ms(v) { return v === null || v === undefined ? "-" : `${Number(v).toFixed(0)} ms`; }

function banner(text, kind) {
  const b = $("banner");
  b.textContent = text;
  b.className = `banner ${kind || ""}`.trim();
  b.hidden = !text;
}

function showSettings(s) {
  const dl = $("settings");
  if (dl.dataset.filled || !s) return;
  const rows = [["window", s.window], ["stride", s.stride], ["size", Array.isArray(s.size) ? s.size.join("x") : s.size],
                ["device", s.device], ["weights", s.weights], ["recording", s.recording || "no"]];
  for (const [k, v] of rows) {
    if (v === undefined || v === null) continue;
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = String(v);
    div.append(dt, dd);
    dl.append(div);
  }
  dl.dataset.filled = "1";
}

function show(st) {
  $("source").textContent = st.source || "";
  showSettings(st.settings);
  if (st.frame !== null && st.frame !== undefined) {
    $("r-frame").textContent = `${st.frame} (source #${st.source_index})`;
    $("r-score").textContent = Number(st.score).toFixed(2);
    $("r-latency").textContent = ms(st.latency_ms);
    $("r-pct").textContent = `${ms(st.latency_p50_ms)} / ${ms(st.latency_p99_ms)}`;
    $("r-fps").textContent = st.fps === null || st.fps === undefined ? "-" : Number(st.fps).toFixed(1);
  }
  $("r-processed").textContent = st.processed;
  $("r-dropped").textContent = st.dropped;
  if (st.frame !== null && st.frame !== undefined && st.frame !== shownFrame && !loading) {
    loading = true;
    const want = st.frame;
    img.onload = () => { loading = false; shownFrame = want; img.hidden = false; img.dataset.frame = String(want); $("stage-msg").hidden = true; };
    img.onerror = () => { loading = false; };
    img.src = `/api/live/frame.jpg?n=${want}`;
  }
  if (st.state === "ended") { banner(`The source ended after ${st.processed} processed frames.`, "ended"); done = true; }
  else if (st.state === "failed") { banner(`The source failed: ${st.message}`, "error"); done = true; }
  else if (st.state === "stopped") { banner("Stopped.", "ended"); done = true; }
  else banner("", "");
  document.body.dataset.state = st.state;
}

async function poll() {
  try {
    const r = await fetch("/api/live/status", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    show(await r.json());
    failures = 0;
  } catch (e) {
    failures += 1;
    if (failures >= 3) {
      banner("Connection lost: the live run has stopped.", "error");
      document.body.dataset.state = "gone";
      done = true;
    }
  }
  if (!done) setTimeout(poll, POLL_MS);
}

poll();
