// lgrnet view: loading a result (its frames, review states, details) and the list of results.
import { numFrames, base, state } from "./state.js";
import { el, api, fmt, banner, saveStatus } from "./dom.js";
import { goTo, setPlaying } from "./player.js";
import { buildLowList } from "./curve.js";
import { summaryRows } from "./sizes.js";

// ---- results ----------------------------------------------------------------------------
export function fillDetails(p) {
  const rows = [["source", p.input ?? "–"], ["kind", p.kind ?? "–"], ["frames", p.num_frames],
    ["size", p.width && p.height ? `${p.width} × ${p.height}` : "–"], ["fps", fmt(p.fps, 2)],
    ["folder", p.display_name], ...summaryRows(p)];
  const nodes = [];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    nodes.push(dt, dd);
  }
  if (p.settings && typeof p.settings === "object") {
    const dt = document.createElement("dt"); dt.textContent = "settings";
    const dd = document.createElement("dd"); const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(p.settings, null, 1);
    dd.append(pre); nodes.push(dt, dd);
  }
  el.details.replaceChildren(...nodes);
}

export async function loadResult(rid, frame) {
  setPlaying(false);
  state.rid = rid;
  el.select.value = rid;
  try {
    state.pred = await api(`/api/results/${encodeURIComponent(rid)}`);
  } catch (e) {
    banner(`cannot load result: ${e.message}`, true);
    return;
  }
  const p = state.pred, n = numFrames();
  const notes = [...(p.warnings || [])];
  state.poly = null;
  state.view = { zoom: 1, ox: 0, oy: 0 };
  el.zoomValue.textContent = "100%";
  el.stage.classList.remove("zoomed");
  try {
    state.corr = await api(`${base()}/corrections`);
    if (!state.corr.writable) state.corr.reason = "this result folder is read-only: corrections cannot be saved";
  } catch (e) {
    state.corr = { frames: {}, writable: false, reason: `corrections are off: ${e.message}` };
  }
  if (state.corr.reason) notes.push(state.corr.reason);
  saveStatus("");
  el.stageMsg.hidden = p.source_status === "ok";
  el.stageMsg.textContent = p.source_status === "ok" ? "" : p.source_message;
  banner(notes.join("; "), false);
  el.slider.max = String(Math.max(0, n - 1));
  for (const b of [el.play, el.prev, el.next, el.slider]) b.disabled = n === 0;
  el.dlMasks.href = `${base()}/masks.zip`;
  el.dlMasks.hidden = !p.has_masks;
  el.dlCsv.href = `${base()}/predictions.csv`;
  el.dlOverlay.href = `${base()}/overlay.mp4`;
  el.dlOverlay.hidden = !p.has_overlay;
  fillDetails(p);
  // the threshold the model records (calibrated on its Valid videos), unless the user has moved the slider
  const recorded = p.settings && typeof p.settings.confidence_threshold === "number" ? p.settings.confidence_threshold : null;
  if (!state.thrTouched) { state.thr = recorded ?? 0.5; el.thr.value = String(state.thr); }
  buildLowList();
  if (!n) { banner("this result has no frames", true); return; }
  goTo(frame ?? 0);
}

export async function refreshResults(selectId, frame) {
  const info = await api("/api/info");
  state.info = info;
  el.select.replaceChildren(...info.results.map((r) => {
    const o = document.createElement("option");
    o.value = r.id;
    o.textContent = `${r.name} (${r.num_frames} frames${r.mean_score != null ? `, mean ${fmt(r.mean_score, 2)}` : ""})`;
    return o;
  }));
  el.select.disabled = info.results.length < 2;
  const ids = info.results.map((r) => r.id);
  const rid = ids.includes(selectId) ? selectId : ids[0];
  if (rid != null) await loadResult(rid, frame);
  else banner("no results to show", true);
}
