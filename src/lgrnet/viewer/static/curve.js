// lgrnet view: the confidence curve and the low-confidence list.
import { numFrames, state } from "./state.js";
import { el, fmt } from "./dom.js";
import { goTo, setPlaying } from "./player.js";

// ---- confidence curve -------------------------------------------------------------------
export const PAD = { l: 34, r: 8, t: 8, b: 18 };
export function curveGeom() {
  const dpr = window.devicePixelRatio || 1;
  const w = el.curve.clientWidth, h = el.curve.clientHeight;
  return { dpr, w, h, pw: Math.max(1, w - PAD.l - PAD.r), ph: Math.max(1, h - PAD.t - PAD.b) };
}
export function xOf(i, g) { const n = numFrames(); return PAD.l + (n > 1 ? i / (n - 1) : 0.5) * g.pw; }
// the score axis as last drawn, [lo, hi] (state.curveRange); a score below lo is drawn on the floor
export function yOf(s, g) {
  const [lo, hi] = state.curveRange;
  return PAD.t + (1 - (Math.min(hi, Math.max(lo, s)) - lo) / (hi - lo)) * g.ph;
}
// The score axis [lo, hi]: the range of the frames' scores above 0 and the threshold, padded by a tenth
// of it (at least 0.01 each side), within [0, 1]. Scores are often in a narrow band (0.78-0.84 for the
// shipped model): on a 0-1 axis the threshold line and the flagged points would run together. A frame
// where the model found nothing (score 0) is drawn on the floor, flagged like any score below the threshold.
export function scoreRange(frames, thr) {
  let lo = thr, hi = thr;
  for (const f of frames) {
    if (typeof f.score === "number" && f.score > 0) { lo = Math.min(lo, f.score); hi = Math.max(hi, f.score); }
  }
  const pad = Math.max(0.1 * (hi - lo), 0.01);
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)];
}
// grid lines: multiples of a round step, at most 5 of them
function ticks(lo, hi) {
  const step = [0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5].find((s) => (hi - lo) / s <= 4) || 0.5;
  const out = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9; k++) out.push(+(k * step).toFixed(4));
  return { values: out, digits: step < 0.01 ? 3 : step < 0.1 ? (step === 0.025 ? 3 : 2) : 1 };
}
export function indexAt(x, g) {
  const n = numFrames();
  return n > 1 ? Math.round(((x - PAD.l) / g.pw) * (n - 1)) : 0;
}
export function drawCurve() {
  const g = curveGeom();
  if (!g.w) return;
  if (el.curve.width !== Math.round(g.w * g.dpr) || el.curve.height !== Math.round(g.h * g.dpr)) {
    el.curve.width = Math.round(g.w * g.dpr); el.curve.height = Math.round(g.h * g.dpr);
  }
  const c = el.curve.getContext("2d");
  c.setTransform(g.dpr, 0, 0, g.dpr, 0, 0);
  c.clearRect(0, 0, g.w, g.h);
  c.font = "10px system-ui, sans-serif";
  c.fillStyle = "#9aa1a8";
  c.strokeStyle = "#33383e";
  c.lineWidth = 1;
  const thr = state.thr;
  state.curveRange = state.pred ? scoreRange(state.pred.frames, thr) : [0, 1];
  el.curve.dataset.range = state.curveRange.map((v) => v.toFixed(4)).join(",");  // for tests and scripts
  const t = ticks(...state.curveRange);
  for (const s of t.values) {
    const y = Math.round(yOf(s, g)) + 0.5;
    c.beginPath(); c.moveTo(PAD.l, y); c.lineTo(PAD.l + g.pw, y); c.stroke();
    c.fillText(s.toFixed(t.digits), 4, y + 3);
  }
  const n = numFrames();
  if (!n) return;
  c.fillText("0", PAD.l - 2, g.h - 4);  // frames counted from 0
  c.fillText(String(n - 1), PAD.l + g.pw - c.measureText(String(n - 1)).width, g.h - 4);
  // threshold
  c.strokeStyle = "#ff5a5a"; c.setLineDash([4, 4]);
  c.beginPath(); c.moveTo(PAD.l, yOf(thr, g)); c.lineTo(PAD.l + g.pw, yOf(thr, g)); c.stroke();
  c.setLineDash([]);
  // scores
  const frames = state.pred.frames;
  c.strokeStyle = "#5fb3ff"; c.lineWidth = 1.5; c.beginPath();
  let started = false;
  frames.forEach((f, i) => {
    if (typeof f.score !== "number") { started = false; return; }
    const x = xOf(i, g), y = yOf(f.score, g);
    if (started) c.lineTo(x, y); else { c.moveTo(x, y); started = true; }
  });
  c.stroke();
  c.fillStyle = "#ff5a5a";
  const r = n > 300 ? 1.2 : 2.5;
  frames.forEach((f, i) => {
    if (typeof f.score === "number" && f.score < thr) {
      c.beginPath(); c.arc(xOf(i, g), yOf(f.score, g), r, 0, 2 * Math.PI); c.fill();
    }
  });
  // reviewed frames: a tick under the plot (green: checked, blue: edited, yellow: boxed)
  for (const [key, v] of Object.entries(state.corr.frames)) {
    const i = parseInt(key, 10);
    if (!(i < n)) continue;
    c.fillStyle = v.state === "checked" ? "#39ff14" : v.state === "boxed" ? "#ffd84a" : "#5fb3ff";
    c.fillRect(Math.round(xOf(i, g)) - 1, PAD.t + g.ph + 2, 2, 4);
  }
  // current frame
  const x = Math.round(xOf(state.index, g)) + 0.5;
  c.strokeStyle = "#39ff14"; c.lineWidth = 1;
  c.beginPath(); c.moveTo(x, PAD.t); c.lineTo(x, PAD.t + g.ph); c.stroke();
}

// ---- low-confidence list ----------------------------------------------------------------
// two decimals for the slider's own values, up to four for a recorded threshold between them
export const fmtThr = (t) => (Math.abs(t * 100 - Math.round(t * 100)) < 1e-9 ? t.toFixed(2) : String(+t.toFixed(4)));
export function lowRuns(thr) {
  const runs = [];
  let cur = null;
  state.pred.frames.forEach((f, i) => {
    const low = typeof f.score === "number" && f.score < thr;
    if (low) {
      if (cur && cur.end === i - 1) { cur.end = i; if (f.score < cur.min) { cur.min = f.score; cur.at = i; } }
      else { cur = { start: i, end: i, min: f.score, at: i }; runs.push(cur); }
    }
  });
  return runs;
}
export function buildLowList() {
  const thr = state.thr;
  el.thrValue.textContent = fmtThr(thr);
  const runs = lowRuns(thr);
  const count = runs.reduce((a, r) => a + r.end - r.start + 1, 0);
  el.lowCount.textContent = `${count} of ${numFrames()} frames below ${fmtThr(thr)}` +
    (runs.length ? ` (${runs.length} stretch${runs.length > 1 ? "es" : ""})` : "");
  const shown = runs.slice(0, 300);
  el.lowList.replaceChildren(...shown.map((r) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.start = r.start; b.dataset.end = r.end;
    const names = state.pred.frames;
    const label = r.start === r.end ? `frame ${r.start}` : `frames ${r.start}–${r.end}`;
    b.title = `${names[r.start].name || ""} … lowest at frame ${r.at}`;
    const s = document.createElement("span"); s.className = "score"; s.textContent = `min ${fmt(r.min, 2)}`;
    b.append(document.createTextNode(label), s);
    b.addEventListener("click", () => { setPlaying(false); goTo(r.start); });
    b.classList.toggle("current", state.index >= r.start && state.index <= r.end);
    li.append(b);
    return li;
  }));
  if (runs.length > shown.length) {
    const li = document.createElement("li"); li.className = "hint";
    li.textContent = `… and ${runs.length - shown.length} more stretches`;
    el.lowList.append(li);
  }
  drawCurve();
}
