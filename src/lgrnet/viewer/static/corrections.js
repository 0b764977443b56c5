// lgrnet view: corrections: the frame's editable mask, the tools, saving and the review states.
import * as M from "./editor.js";
import { numFrames, base, frameKey, frameStatus, frameStateName, docKey, state } from "./state.js";
import { el, api, banner, saveStatus, reviewerHeaders } from "./dom.js";
import { render, renderSoon, goTo, setPlaying, showFrameInfo } from "./player.js";
import { drawCurve } from "./curve.js";
import { cachedDoc, dropCached, errorText } from "./doccache.js";
import { boxPointerDown, boxPointerMove, boxPointerUp, canUndoBoxes, dropBoxDoc, updateBoxInfo } from "./boxes.js";

// the outline is drawn from the mask's pixels when the frame was corrected, while editing, or filled
export function maskFromPixels(i) {
  return (state.tool !== "view" && state.tool !== "box") || el.maskFill.checked || frameStateName(i) === "edited";
}

// A frame's editable mask: {key, rid, i, mask: {w, h, data}, version, history, rev, ...}, from
// GET corrections/<i>.png (the reviewer's mask if saved, else the model's).
export function getDoc(i) {
  return cachedDoc(state.masks, i, "the mask", async (key, rid) => {
    const res = await fetch(`/api/results/${encodeURIComponent(rid)}/corrections/${i}.png`, { cache: "no-store" });
    if (!res.ok) throw new Error(await errorText(res));
    const version = parseInt(res.headers.get("X-Mask-Version") || "0", 10);
    const bitmap = await createImageBitmap(await res.blob());
    const doc = { key, rid, i, mask: M.maskFromImage(bitmap), version, source: res.headers.get("X-Mask-Source"),
      history: new M.History(40), rev: 0, paintRect: "all", saving: false, pending: false, dirty: false, conflict: null };
    bitmap.close();
    return doc;
  });
}
export function dropDoc(i) { dropCached(state.masks, i); }
// the current frame's mask, if loaded and editable; else says why not
export function editableDoc() {
  const doc = state.masks.ready.get(docKey(state.index));
  if (!state.corr.writable) { saveStatus(state.corr.reason || "this result folder is read-only: corrections cannot be saved", true); return null; }
  if (frameStateName(state.index) === "boxed") {
    saveStatus(`frame ${state.index} is annotated with boxes: Revert to model before correcting its mask`, true);
    return null;
  }
  if (!doc || !whoCorrects()) return null;
  if (doc.conflict) { saveStatus("this frame changed elsewhere: reload it before editing", true); return null; }
  return doc;
}

export function setFrameStatus(rid, i, body) {
  if (rid !== state.rid) return;
  if (body.state === "unchecked") delete state.corr.frames[frameKey(i)];
  else state.corr.frames[frameKey(i)] = { state: body.state, time: body.time, version: body.version, reviewer: body.reviewer || undefined };
  const doc = state.masks.ready.get(`${rid}/${i}`), bdoc = state.boxes.ready.get(`${rid}/${i}`);
  if (doc) doc.version = body.version;
  if (bdoc) bdoc.version = body.version;
  updateReview();
  if (i === state.index) showFrameInfo();
  drawCurve();
}
// " by NAME" for a 409's current state that records who changed the frame
function byWhom(current) { return current && current.reviewer ? ` by ${current.reviewer}` : ""; }
// the name that writes need when the page is served with access tokens; false (and says so) when missing
export function whoCorrects() {
  if (!(state.info && state.info.auth && state.info.auth.required) || state.reviewer) return true;
  saveStatus("type your name in the reviewer box at the top before correcting (each change records who made it)", true);
  el.reviewer.focus();
  return false;
}
export function showConflict(doc, message, current) {
  doc.conflict = message;
  if (doc.rid === state.rid && doc.i === state.index) {
    saveStatus(`frame ${doc.i} not saved: changed${byWhom(current)} in another tab or session`, true);
    el.reloadFrame.hidden = false;
  }
  banner(message, true);
}

// After every change: redraw, then PUT the mask with the version it replaces. One save per frame at
// a time; changes made meanwhile go in the next one. 409: another tab or session saved first.
export function touch(doc, rect) {  // the mask changed (in rect [x0, y0, x1, y1), or anywhere)
  doc.rev++;
  const a = doc.paintRect;
  doc.paintRect = !rect || a === "all" ? "all"
    : a ? [Math.min(a[0], rect[0]), Math.min(a[1], rect[1]), Math.max(a[2], rect[2]), Math.max(a[3], rect[3])] : rect;
}
export function strokeRect(x0, y0, x1, y1, r) {
  return [Math.floor(Math.min(x0, x1) - r) - 1, Math.floor(Math.min(y0, y1) - r) - 1,
    Math.ceil(Math.max(x0, x1) + r) + 2, Math.ceil(Math.max(y0, y1) + r) + 2];
}
export function changed(doc, touched) {
  if (!touched) touch(doc);
  doc.dirty = true;
  updateReview();
  render();
  save(doc);
}
export async function save(doc) {
  if (doc.conflict) return;
  if (doc.saving) { doc.pending = true; return; }
  doc.saving = true;
  const here = () => doc.rid === state.rid && doc.i === state.index;
  try {
    do {
      doc.pending = false;
      const rev = doc.rev;
      if (here()) saveStatus("saving…");
      const blob = await M.maskToPng(doc.mask);
      const res = await fetch(`/api/results/${encodeURIComponent(doc.rid)}/corrections/${doc.i}.png`, {
        method: "PUT", body: blob, cache: "no-store",
        headers: { "Content-Type": "image/png", "X-Expected-Version": String(doc.version), ...reviewerHeaders() },
      });
      let body = {};
      try { body = await res.json(); } catch (e) { /* not JSON */ }
      if (res.status === 409) { showConflict(doc, body.error || "changed elsewhere", body.current); return; }
      if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
      doc.version = body.version;
      if (doc.rev === rev) doc.dirty = false;
      setFrameStatus(doc.rid, doc.i, body);
    } while (doc.pending);
    if (here()) saveStatus(`frame ${doc.i}: saved, version ${doc.version}`);
  } catch (e) {
    if (here()) saveStatus(`frame ${doc.i} not saved: ${e.message}`, true);
  } finally {
    doc.saving = false;
  }
}
export async function postState(i, want) {
  if (!whoCorrects()) return false;
  const rid = state.rid, st = frameStatus(i);
  let body = {};
  const res = await fetch(`${base()}/corrections/${i}/status`, {
    method: "POST", cache: "no-store", headers: { "Content-Type": "application/json", ...reviewerHeaders() },
    body: JSON.stringify({ state: want, version: st ? st.version : 0 }),
  });
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (res.status === 409) {
    banner(body.error, true);
    saveStatus(`frame ${i}: changed${byWhom(body.current)} in another tab or session; reload it`, true);
    el.reloadFrame.hidden = false;
    return false;
  }
  if (!res.ok) { saveStatus(`frame ${i}: ${body.error || res.status}`, true); return false; }
  setFrameStatus(rid, i, body);
  saveStatus(`frame ${i}: ${body.state}, version ${body.version}`);
  return true;
}

// an operation on the current frame's mask: record for undo, apply, keep it if it changed anything
export function operate(fn) {
  const doc = editableDoc();
  if (!doc) return;
  doc.history.record(doc.mask);
  if (fn(doc) > 0) changed(doc);
  else { doc.history.undos.pop(); render(); }
}
export function undoRedo(redo) {
  const doc = editableDoc();
  if (doc && (redo ? doc.history.redo(doc.mask) : doc.history.undo(doc.mask))) changed(doc);
}
export async function copyPrevious() {
  const i = state.index;
  if (i === 0) { saveStatus("frame 0 has no previous frame", true); return; }
  const prev = await getDoc(i - 1);
  if (!prev || i !== state.index) return;
  operate((doc) => {
    if (prev.mask.w !== doc.mask.w || prev.mask.h !== doc.mask.h) { saveStatus("the previous frame's mask has another size", true); return 0; }
    let n = 0;
    for (let o = 0; o < doc.mask.data.length; o++) if (doc.mask.data[o] !== prev.mask.data[o]) n++;
    doc.mask.data.set(prev.mask.data);
    return n;
  });
}
export async function revertFrame() {
  const i = state.index;
  if (frameStateName(i) === "unchecked" || busy(i)) return;
  const what = { edited: "corrections", boxed: "boxes" }[frameStateName(i)];
  if (what && !window.confirm(`Drop your ${what} of frame ${i} and go back to the model's mask?`)) return;
  if (await postState(i, "unchecked")) { dropDoc(i); dropBoxDoc(i); render(); }
}
export async function reloadFrame() {
  const i = state.index;
  try { state.corr = await api(`${base()}/corrections`); } catch (e) { /* keep what we have */ }
  dropDoc(i);
  dropBoxDoc(i);
  el.reloadFrame.hidden = true;
  banner("", false);
  saveStatus(`frame ${i}: reloaded`);
  updateReview();
  render();
}
export function busy(i) {  // a change of this frame not yet saved: its state is about to become "edited" or "boxed"
  const doc = state.masks.ready.get(docKey(i)), bdoc = state.boxes.ready.get(docKey(i));
  return !!(doc && (doc.dirty || doc.saving)) || !!(bdoc && (bdoc.dirty || bdoc.saving));
}
export function toggleChecked() {
  const i = state.index, s = frameStateName(i);
  if (busy(i)) { saveStatus(`frame ${i}: saving…`); return; }
  if (s === "edited") { saveStatus(`frame ${i} is edited: revert it to the model's mask to mark that one checked`, true); return; }
  if (s === "boxed") { saveStatus(`frame ${i} is annotated with boxes: revert it to the model's mask to mark that one checked`, true); return; }
  postState(i, s === "checked" ? "unchecked" : "checked");
}
export function jump(pred, what) {
  const n = numFrames();
  for (let s = 1; s <= n; s++) {
    const i = (state.index + s) % n;
    if (pred(i)) { setPlaying(false); goTo(i); return; }
  }
  saveStatus(`no ${what} frame left`);
}

export function setTool(tool) {
  if (tool !== "view" && tool !== "box" && state.tool === "view" && !state.fillChosen) el.maskFill.checked = true;  // once: show the fill
  state.tool = tool;
  state.poly = null;
  for (const b of el.toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
  el.canvas.classList.toggle("drawing", tool !== "view");
  el.canvas.style.cursor = "";
  updateBoxInfo();
  render();
}
export function updateReview() {
  if (!state.pred) return;
  const i = state.index, s = frameStateName(i), doc = state.masks.ready.get(docKey(i));
  el.frameState.textContent = s;
  el.frameState.dataset.state = s;
  el.markChecked.textContent = s === "checked" ? "Checked ✓" : "Mark checked";
  el.markChecked.disabled = !state.corr.writable || s === "edited" || s === "boxed" || busy(i);
  el.revert.disabled = !state.corr.writable || s === "unchecked";
  const boxes = state.tool === "box";  // undo and redo follow the tool: the boxes' or the mask's
  el.undo.disabled = boxes ? !canUndoBoxes(false) : !(doc && doc.history.canUndo);
  el.redo.disabled = boxes ? !canUndoBoxes(true) : !(doc && doc.history.canRedo);
  el.reloadFrame.hidden = !(doc && doc.conflict);
  const st = frameStatus(i);  // who last touched the frame, and when
  el.frameBy.textContent = st ? `${st.reviewer ? `by ${st.reviewer}, ` : ""}${(st.time || "").replace("T", " ").replace("Z", " UTC")}` : "";
  let checked = 0, edited = 0, boxed = 0;
  for (const v of Object.values(state.corr.frames)) {
    if (v.state === "checked") checked++; else if (v.state === "edited") edited++; else if (v.state === "boxed") boxed++;
  }
  el.reviewCount.textContent = `${checked} checked, ${edited} edited, ${boxed ? `${boxed} boxed, ` : ""}` +
    `${numFrames() - checked - edited - boxed} to review`;
  updateBoxInfo();
}

// pointer -> frame coordinates (continuous; pixel (x, y) covers [x, x+1))
export function framePoint(e) {
  const r = el.canvas.getBoundingClientRect();
  const cx = (e.clientX - r.left) * (el.canvas.width / r.width), cy = (e.clientY - r.top) * (el.canvas.height / r.height);
  return [cx / state.k + state.view.ox, cy / state.k + state.view.oy, cx, cy];
}
export function closePolygon(erase) {
  const poly = state.poly;
  state.poly = null;
  if (!poly || poly.pts.length < 3) { render(); return; }
  operate((doc) => M.fillPolygon(doc.mask, poly.pts, erase ? 0 : 1));
}
export function onPointerDown(e) {
  if (!state.pred) return;
  const [fx, fy, cx, cy] = framePoint(e);
  if (e.button === 1 || (e.button === 0 && state.tool === "view")) {  // pan
    if (state.view.zoom > 1) {
      state.pan = { x: cx, y: cy, ox: state.view.ox, oy: state.view.oy };
      el.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
    }
    return;
  }
  if (e.button !== 0) return;
  e.preventDefault();
  if (state.tool === "box") { boxPointerDown(e, fx, fy); return; }
  const px = Math.floor(fx), py = Math.floor(fy);
  if (state.tool === "brush" || state.tool === "eraser") {
    const doc = editableDoc();
    if (!doc) return;
    const value = state.tool === "brush" ? 1 : 0, r = +el.brushSize.value;
    doc.history.record(doc.mask);
    const n = M.stampSegment(doc.mask, px, py, px, py, r, value);
    state.stroke = { doc, x: px, y: py, value, r, changed: n };
    if (n) { touch(doc, strokeRect(px, py, px, py, r)); render(); }
    el.canvas.setPointerCapture(e.pointerId);
  } else if (state.tool === "fill") {
    operate((doc) => M.floodFill(doc.mask, px, py, e.shiftKey ? 0 : 1));
  } else if (state.tool === "polygon") {
    const key = `${state.rid}/${state.index}`;
    if (!state.poly || state.poly.key !== key) state.poly = { key, pts: [] };
    const pts = state.poly.pts, dpr = window.devicePixelRatio || 1;
    if (pts.length >= 3 && Math.hypot((pts[0][0] - fx) * state.k, (pts[0][1] - fy) * state.k) <= 8 * dpr) closePolygon(e.shiftKey);
    else { pts.push([fx, fy]); render(); }
  }
}
export function onPointerMove(e) {
  if (!state.pred) return;
  const [fx, fy, cx, cy] = framePoint(e);
  state.hover = [fx, fy];
  if (state.pan) {
    state.view.ox = state.pan.ox - (cx - state.pan.x) / state.k;
    state.view.oy = state.pan.oy - (cy - state.pan.y) / state.k;
    renderSoon();
    return;
  }
  if (state.tool === "box" || state.boxDrag) { boxPointerMove(fx, fy); return; }
  const st = state.stroke;
  if (st) {
    const px = Math.floor(fx), py = Math.floor(fy);
    if (px !== st.x || py !== st.y) {
      const n = M.stampSegment(st.doc.mask, st.x, st.y, px, py, st.r, st.value);
      if (n) touch(st.doc, strokeRect(st.x, st.y, px, py, st.r));
      st.x = px; st.y = py; st.changed += n;
    }
  }
  if (st || state.tool !== "view") renderSoon();
}
export function onPointerUp() {
  state.pan = null;
  if (state.boxDrag) { boxPointerUp(); return; }
  const st = state.stroke;
  if (!st) return;
  state.stroke = null;
  if (st.changed) changed(st.doc, true);
  else { st.doc.history.undos.pop(); }
}
