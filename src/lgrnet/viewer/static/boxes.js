// lgrnet view: the box tool. A frame annotated by boxes instead of a mask: draw a box with the mouse,
// drag its corners or edges to adjust it, drag inside it to move it, delete it, copy the frame's boxes
// to the next frames. Saved through PUT corrections/<i>/boxes (the frame's state becomes "boxed").
//
// Boxes are [x, y, w, h] in frame pixels, COCO's convention (x, y the top-left corner; the frame's
// top-left corner is 0, 0): the box file of lgrnet.data.boxes. The page snaps every edge to a pixel
// edge (integers) and keeps boxes inside the frame. An empty list is a frame annotated "no lesion".
//
// A box doc: {key, rid, i, boxes, version, size: [H, W], sel (selected box or -1), undos, redos,
// rev, dirty, saving (a Promise while a save runs), pending, conflict} from GET corrections/<i>/boxes.
import { numFrames, frameStateName, docKey, state } from "./state.js";
import { el, ctx, saveStatus, reviewerHeaders } from "./dom.js";
import { render, renderSoon } from "./player.js";
import { setFrameStatus, showConflict, whoCorrects } from "./corrections.js";
import { cachedDoc, dropCached, errorText } from "./doccache.js";

export const BOX_COLOR = "#ffd84a";
const HANDLE_CSS = 6;     // how near (CSS pixels) an edge or corner must be to grab it
const MIN_DRAG_CSS = 3;   // a shorter drag on empty frame is a click (deselects)
const HISTORY = 40;

// the boxes are drawn for a frame annotated with boxes, and on every frame while the tool is on
export function showBoxes(i) { return state.tool === "box" || frameStateName(i) === "boxed"; }

export function getBoxDoc(i) {
  return cachedDoc(state.boxes, i, "the boxes", async (key, rid) => {
    const res = await fetch(`/api/results/${encodeURIComponent(rid)}/corrections/${i}/boxes`, { cache: "no-store" });
    if (!res.ok) throw new Error(await errorText(res));
    const body = await res.json();
    return { key, rid, i, boxes: body.boxes || [], version: body.version, size: body.frame_size, sel: -1,
      undos: [], redos: [], rev: 0, dirty: false, saving: null, pending: false, conflict: null };
  });
}
export function dropBoxDoc(i) { dropCached(state.boxes, i); }

// the current frame's box doc, if loaded and editable with boxes; else says why not
function editableBoxDoc() {
  const i = state.index, doc = state.boxes.ready.get(docKey(i));
  if (!state.corr.writable) { saveStatus(state.corr.reason || "this result folder is read-only: corrections cannot be saved", true); return null; }
  if (frameStateName(i) === "edited") {
    saveStatus(`frame ${i} has a corrected mask: Revert to model before annotating it with boxes`, true);
    return null;
  }
  if (!doc || !whoCorrects()) return null;
  if (doc.conflict) { saveStatus("this frame changed elsewhere: reload it before editing", true); return null; }
  return doc;
}

// ---- saving: the whole list, with the version it replaces; one save per frame at a time --------
export function saveBoxes(doc) {
  if (doc.conflict) return Promise.resolve(false);
  if (doc.saving) { doc.pending = true; return doc.saving; }
  const here = () => doc.rid === state.rid && doc.i === state.index;
  doc.saving = (async () => {
    try {
      do {
        doc.pending = false;
        const rev = doc.rev;
        if (here()) saveStatus("saving…");
        const res = await fetch(`/api/results/${encodeURIComponent(doc.rid)}/corrections/${doc.i}/boxes`, {
          method: "PUT", cache: "no-store", headers: { "Content-Type": "application/json", ...reviewerHeaders() },
          body: JSON.stringify({ boxes: doc.boxes, version: doc.version }),
        });
        let body = {};
        try { body = await res.json(); } catch (e) { /* not JSON */ }
        if (res.status === 409) { showConflict(doc, body.error || "changed elsewhere", body.current); return false; }
        if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
        doc.version = body.version;
        if (doc.rev === rev) doc.dirty = false;
        setFrameStatus(doc.rid, doc.i, body);
      } while (doc.pending);
      if (here()) saveStatus(`frame ${doc.i}: saved, version ${doc.version}`);
      return true;
    } catch (e) {
      if (here()) saveStatus(`frame ${doc.i} not saved: ${e.message}`, true);
      return false;
    } finally {
      doc.saving = null;
      updateBoxInfo();
    }
  })();
  return doc.saving;
}
// record the boxes before a change (for undo), then the change is made by the caller
function record(doc) {
  doc.undos.push(JSON.stringify(doc.boxes));
  if (doc.undos.length > HISTORY) doc.undos.shift();
  doc.redos.length = 0;
}
function changed(doc) {
  doc.rev++;
  doc.dirty = true;
  updateBoxInfo();
  render();
  return saveBoxes(doc);
}
export function boxUndoRedo(redo) {
  const doc = editableBoxDoc();
  if (!doc) return;
  const from = redo ? doc.redos : doc.undos, to = redo ? doc.undos : doc.redos;
  if (!from.length) return;
  to.push(JSON.stringify(doc.boxes));
  doc.boxes = JSON.parse(from.pop());
  doc.sel = -1;
  changed(doc);
}
export function canUndoBoxes(redo) {
  const doc = state.boxes.ready.get(docKey(state.index));
  return !!(doc && (redo ? doc.redos : doc.undos).length);
}

export function deleteSelectedBox() {
  const doc = editableBoxDoc();
  if (!doc) return;
  const j = doc.sel >= 0 ? doc.sel : doc.boxes.length === 1 ? 0 : -1;
  if (j < 0) { saveStatus(doc.boxes.length ? "click a box to select it, then delete it" : `frame ${doc.i} has no box to delete`, true); return; }
  record(doc);
  doc.boxes.splice(j, 1);
  doc.sel = -1;
  changed(doc);
}

// Copy the current frame's boxes to the next n frames (replacing theirs); frames with a corrected mask
// keep it. Each frame is one save with the version this page read; a stale one is refused (409).
export async function copyBoxesToNext(n) {
  const i = state.index, src = editableBoxDoc();
  if (!src) return;
  if (src.saving) await src.saving;
  const last = Math.min(numFrames() - 1, i + Math.max(1, Math.floor(n) || 1));
  if (last <= i) { saveStatus(`frame ${i} is the last frame: no next frames to copy to`, true); return; }
  const copied = [], skipped = [], failed = [];
  const saves = [];
  for (let j = i + 1; j <= last; j++) {
    if (frameStateName(j) === "edited") { skipped.push(j); continue; }
    const doc = await getBoxDoc(j);
    if (!doc || doc.conflict) { failed.push(j); continue; }
    record(doc);
    doc.boxes = src.boxes.map((b) => b.slice());
    doc.sel = -1;
    doc.rev++; doc.dirty = true;
    saves.push(saveBoxes(doc).then((ok) => (ok ? copied : failed).push(j)));
  }
  await Promise.all(saves);
  if (state.index !== i) return;
  const span = (xs) => (xs.length ? `${xs.sort((a, b) => a - b).join(", ")}` : "");
  let msg = copied.length ? `frame ${i}: boxes copied to ${copied.length} frame${copied.length > 1 ? "s" : ""} (${span(copied)})`
    : `frame ${i}: boxes copied to no frame`;
  if (skipped.length) msg += `; not to ${span(skipped)} (a corrected mask)`;
  if (failed.length) msg += `; not saved on ${span(failed)} (see the banner)`;
  saveStatus(msg, failed.length > 0);
  render();
}

// ---- the pointer: draw, resize, move ----------------------------------------------------------
const dpr = () => window.devicePixelRatio || 1;
function snap(v, hi) { return Math.round(Math.max(0, Math.min(hi, v))); }

// the box and the part of it under frame point (fx, fy): {j, ex: "l"|"r"|"", ey: "t"|"b"|""} for an
// edge or corner, {j, move: true} inside; null elsewhere. The selected box first, then the top one.
function hitTest(doc, fx, fy) {
  const tol = (HANDLE_CSS * dpr()) / state.k, order = [];
  if (doc.sel >= 0 && doc.sel < doc.boxes.length) order.push(doc.sel);
  for (let j = doc.boxes.length - 1; j >= 0; j--) if (j !== doc.sel) order.push(j);
  for (const j of order) {
    const [x, y, w, h] = doc.boxes[j], x1 = x + w, y1 = y + h;
    if (fx < x - tol || fx > x1 + tol || fy < y - tol || fy > y1 + tol) continue;
    const dl = Math.abs(fx - x), dr = Math.abs(fx - x1), dt = Math.abs(fy - y), db = Math.abs(fy - y1);
    const ex = Math.min(dl, dr) <= tol ? (dl <= dr ? "l" : "r") : "";
    const ey = Math.min(dt, db) <= tol ? (dt <= db ? "t" : "b") : "";
    if (ex || ey) return { j, ex, ey };
    return { j, move: true };
  }
  return null;
}
const CURSORS = { lt: "nwse-resize", rb: "nwse-resize", rt: "nesw-resize", lb: "nesw-resize", l: "ew-resize",
  r: "ew-resize", t: "ns-resize", b: "ns-resize" };
function cursorFor(hit) { return !hit ? "crosshair" : hit.move ? "move" : CURSORS[hit.ex + hit.ey]; }

export function boxPointerDown(e, fx, fy) {
  const doc = editableBoxDoc();
  if (!doc) return;
  const [H, W] = doc.size, hit = hitTest(doc, fx, fy);
  const before = JSON.stringify(doc.boxes);
  if (hit) {
    doc.sel = hit.j;
    const [x, y, w, h] = doc.boxes[hit.j];
    state.boxDrag = { doc, j: hit.j, before, start: [fx, fy], orig: [x, y, x + w, y + h], ex: hit.ex || "", ey: hit.ey || "",
      move: !!hit.move, isNew: false, far: false };
  } else {
    const ax = snap(fx, W), ay = snap(fy, H);
    state.boxDrag = { doc, j: -1, before, start: [fx, fy], orig: [ax, ay, ax, ay], ex: "r", ey: "b", move: false, isNew: true, far: false };
    doc.sel = -1;
  }
  el.canvas.setPointerCapture(e.pointerId);
  render();
}
export function boxPointerMove(fx, fy) {
  const g = state.boxDrag;
  if (!g) {  // hover: the cursor says what a press would do
    const doc = state.tool === "box" ? state.boxes.ready.get(docKey(state.index)) : null;
    el.canvas.style.cursor = doc ? cursorFor(hitTest(doc, fx, fy)) : "";
    return;
  }
  const doc = g.doc, [H, W] = doc.size;
  if (!g.far && Math.hypot(fx - g.start[0], fy - g.start[1]) * state.k < MIN_DRAG_CSS * dpr()) return;
  g.far = true;
  let [x0, y0, x1, y1] = g.orig;
  if (g.move) {
    const dx = Math.round(fx - g.start[0]), dy = Math.round(fy - g.start[1]);
    const mx = Math.max(-x0, Math.min(W - x1, dx)), my = Math.max(-y0, Math.min(H - y1, dy));
    x0 += mx; x1 += mx; y0 += my; y1 += my;
  } else {
    if (g.ex === "l") x0 = snap(fx, W); else if (g.ex === "r") x1 = snap(fx, W);
    if (g.ey === "t") y0 = snap(fy, H); else if (g.ey === "b") y1 = snap(fy, H);
    [x0, x1] = [Math.min(x0, x1), Math.max(x0, x1)];
    [y0, y1] = [Math.min(y0, y1), Math.max(y0, y1)];
  }
  const box = [x0, y0, x1 - x0, y1 - y0];
  if (g.j < 0) { doc.boxes.push(box); g.j = doc.boxes.length - 1; doc.sel = g.j; } else doc.boxes[g.j] = box;
  renderSoon();
}
export function boxPointerUp() {
  const g = state.boxDrag;
  state.boxDrag = null;
  if (!g) return;
  const doc = g.doc;
  if (g.j >= 0 && (doc.boxes[g.j][2] < 1 || doc.boxes[g.j][3] < 1)) {  // a box needs a size: drop it (new) or keep the old one
    if (g.isNew) { doc.boxes.splice(g.j, 1); doc.sel = -1; } else doc.boxes = JSON.parse(g.before);
  }
  if (JSON.stringify(doc.boxes) === g.before) { render(); return; }
  doc.undos.push(g.before);
  if (doc.undos.length > HISTORY) doc.undos.shift();
  doc.redos.length = 0;
  changed(doc);
}

// ---- drawing ----------------------------------------------------------------------------------
// The doc's boxes on the canvas (its transform maps frame pixels); the selected one with handles.
// The summary beside the review state follows what is drawn.
export function drawBoxes(doc, k) {
  updateBoxInfo();
  const px = 1 / k, d = dpr(), editing = state.tool === "box";
  ctx.lineJoin = "miter";
  doc.boxes.forEach(([x, y, w, h], j) => {
    const sel = editing && j === doc.sel;
    ctx.lineWidth = 2 * d * px;
    ctx.strokeStyle = sel ? "#ffffff" : BOX_COLOR;
    ctx.strokeRect(x, y, w, h);
    if (!sel) return;
    const s = 3 * d * px;
    ctx.fillStyle = BOX_COLOR;
    for (const [hx, hy] of [[x, y], [x + w / 2, y], [x + w, y], [x + w, y + h / 2], [x + w, y + h], [x + w / 2, y + h], [x, y + h], [x, y + h / 2]]) {
      ctx.fillRect(hx - s, hy - s, 2 * s, 2 * s);
    }
  });
}

// ---- the bar and the frame's box summary ------------------------------------------------------
export function updateBoxInfo() {
  if (!state.pred) return;
  const i = state.index, doc = state.boxes.ready.get(docKey(i));
  el.boxBar.hidden = state.tool !== "box";
  let text = "";
  if (doc && showBoxes(i)) {
    const n = doc.boxes.length;
    if (frameStateName(i) === "boxed" || n) {
      text = n === 0 ? "boxes: none (no lesion)" : `box${n > 1 ? `es (${n})` : ""}: ` +
        doc.boxes.map(([x, y, w, h]) => `${+w.toFixed(2)}×${+h.toFixed(2)} px at (${+x.toFixed(2)}, ${+y.toFixed(2)})`).join("; ");
    }
  }
  el.boxInfo.textContent = text;
  el.boxDelete.disabled = !(doc && doc.boxes.length) || !state.corr.writable;
  el.boxCopy.disabled = !(doc && frameStateName(i) === "boxed") || !state.corr.writable || i >= numFrames() - 1;
  if (state.tool === "box") { el.undo.disabled = !canUndoBoxes(false); el.redo.disabled = !canUndoBoxes(true); }
}

window.addEventListener("beforeunload", (e) => {
  for (const doc of state.boxes.ready.values()) if (doc.dirty || doc.saving) { e.preventDefault(); e.returnValue = ""; return; }
});

// for tests and scripts: frame i's boxes as the page holds them
async function boxesOf(i) {
  const doc = await getBoxDoc(i);
  return doc ? { version: doc.version, boxes: doc.boxes.map((b) => b.slice()), size: doc.size, state: frameStateName(i) } : null;
}
window.lgrnetBoxes = { boxesOf, copyBoxesToNext, hitTest };
