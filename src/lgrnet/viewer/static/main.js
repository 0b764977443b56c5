// lgrnet view: the review page's entry point: the events and the start.
// Plain browser JavaScript modules, no build step, nothing loaded from elsewhere.
import { numFrames, frameStatus, state } from "./state.js";
import { el, fmt, banner } from "./dom.js";
import { render, renderSoon, setZoom, goTo, setPlaying } from "./player.js";
import { getDoc, operate, undoRedo, copyPrevious, revertFrame, reloadFrame, toggleChecked, jump, setTool, framePoint, closePolygon, onPointerDown, onPointerMove, onPointerUp } from "./corrections.js";
import { curveGeom, indexAt, drawCurve, buildLowList } from "./curve.js";
import { setupUpload, startUpload } from "./uploads.js";
import { loadResult, refreshResults } from "./results.js";
import { boxUndoRedo, deleteSelectedBox, copyBoxesToNext } from "./boxes.js";

// ---- events -----------------------------------------------------------------------------
el.slider.addEventListener("input", () => { setPlaying(false); goTo(+el.slider.value); });
el.play.addEventListener("click", () => setPlaying(!state.playing));
el.prev.addEventListener("click", () => { setPlaying(false); goTo(state.index - 1); });
el.next.addEventListener("click", () => { setPlaying(false); goTo(state.index + 1); });
el.outline.addEventListener("change", () => render());
el.thr.addEventListener("input", () => { state.thr = +el.thr.value; state.thrTouched = true; buildLowList(); });
el.select.addEventListener("change", () => loadResult(el.select.value, 0));
el.uploadBtn.addEventListener("click", startUpload);
for (const b of el.toolButtons) b.addEventListener("click", () => setTool(b.dataset.tool));
el.brushSize.addEventListener("input", () => { el.brushSizeValue.textContent = `${el.brushSize.value} px`; render(); });
const undoOrRedo = (redo) => (state.tool === "box" ? boxUndoRedo(redo) : undoRedo(redo));
el.undo.addEventListener("click", () => undoOrRedo(false));
el.redo.addEventListener("click", () => undoOrRedo(true));
el.boxDelete.addEventListener("click", deleteSelectedBox);
el.boxCopy.addEventListener("click", () => copyBoxesToNext(+el.boxCopyN.value));
el.clear.addEventListener("click", () => operate((doc) => {
  let n = 0;
  for (let o = 0; o < doc.mask.data.length; o++) n += doc.mask.data[o];
  doc.mask.data.fill(0);
  return n;
}));
el.copyPrev.addEventListener("click", copyPrevious);
el.revert.addEventListener("click", revertFrame);
el.maskFill.addEventListener("change", () => { state.fillChosen = true; render(); });
el.zoomIn.addEventListener("click", () => setZoom(state.view.zoom * 1.5));
el.zoomOut.addEventListener("click", () => setZoom(state.view.zoom / 1.5));
el.zoomFit.addEventListener("click", () => setZoom(1));
el.markChecked.addEventListener("click", toggleChecked);
el.nextUnchecked.addEventListener("click", () => jump((i) => !frameStatus(i), "unchecked"));
el.nextLow.addEventListener("click", () => jump((i) => {
  const f = state.pred.frames[i];
  return !frameStatus(i) && typeof f.score === "number" && f.score < state.thr;
}, "unchecked low-confidence"));
el.reloadFrame.addEventListener("click", reloadFrame);
el.canvas.addEventListener("pointerdown", onPointerDown);
el.canvas.addEventListener("pointermove", onPointerMove);
el.canvas.addEventListener("pointerup", onPointerUp);
el.canvas.addEventListener("pointercancel", onPointerUp);
el.canvas.addEventListener("pointerleave", () => { if (!state.stroke && !state.pan) { state.hover = null; renderSoon(); } });
el.canvas.addEventListener("dblclick", (e) => { if (state.tool === "polygon") { e.preventDefault(); closePolygon(e.shiftKey); } });
el.canvas.addEventListener("contextmenu", (e) => { if (state.tool !== "view") e.preventDefault(); });
el.canvas.addEventListener("wheel", (e) => {
  if (!state.pred) return;
  e.preventDefault();
  const [, , cx, cy] = framePoint(e);
  setZoom(state.view.zoom * Math.pow(1.0015, -e.deltaY), [cx, cy]);
}, { passive: false });
window.addEventListener("beforeunload", (e) => {
  for (const doc of state.masks.ready.values()) if (doc.dirty || doc.saving) { e.preventDefault(); e.returnValue = ""; return; }
});
el.curve.addEventListener("click", (e) => {
  const g = curveGeom(), rect = el.curve.getBoundingClientRect();
  setPlaying(false);
  goTo(indexAt(e.clientX - rect.left, g));
});
el.curve.addEventListener("mousemove", (e) => {
  if (!state.pred) return;
  const g = curveGeom(), rect = el.curve.getBoundingClientRect();
  const i = Math.max(0, Math.min(numFrames() - 1, indexAt(e.clientX - rect.left, g)));
  const f = state.pred.frames[i];
  if (f) el.curveHover.textContent = `frame ${i} (${f.name ?? ""}): confidence ${fmt(f.score)}`;
});
window.addEventListener("resize", () => { drawCurve(); if (state.pred) render(); });
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (t && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "checkbox"))) return;
  const ctrl = e.ctrlKey || e.metaKey, key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (ctrl && key === "z") { undoOrRedo(e.shiftKey); e.preventDefault(); return; }
  if (ctrl && key === "y") { undoOrRedo(true); e.preventDefault(); return; }
  if (ctrl || e.altKey) return;
  const tools = { v: "view", b: "brush", e: "eraser", f: "fill", p: "polygon", r: "box" };
  if (tools[key]) { setTool(tools[key]); }
  else if ((e.key === "Delete" || e.key === "Backspace") && state.tool === "box") { deleteSelectedBox(); }
  else if (key === "c") { toggleChecked(); }
  else if (key === "u") { el.nextUnchecked.click(); }
  else if (key === "l") { el.nextLow.click(); }
  else if (key === "[" || key === "]") {
    el.brushSize.value = String(+el.brushSize.value + (key === "]" ? 1 : -1));
    el.brushSize.dispatchEvent(new Event("input"));
  }
  else if (key === "+" || key === "=") { setZoom(state.view.zoom * 1.5); }
  else if (key === "-") { setZoom(state.view.zoom / 1.5); }
  else if (key === "0") { setZoom(1); }
  else if (e.key === "Enter" && state.poly) { closePolygon(e.shiftKey); }
  else if (e.key === "Escape" && state.poly) { state.poly = null; render(); }
  else if (e.key === "ArrowRight") { setPlaying(false); goTo(state.index + 1); }
  else if (e.key === "ArrowLeft") { setPlaying(false); goTo(state.index - 1); }
  else if (e.key === " ") { setPlaying(!state.playing); }
  else if (e.key === "o" || e.key === "O") { el.outline.checked = !el.outline.checked; render(); }
  else return;
  e.preventDefault();
});

// ---- the reviewer's name -------------------------------------------------------------------
// The name bound to the access token (fixed), else the one typed here (kept in this browser).
const REVIEWER_KEY = "lgrnet.reviewer";
function setupReviewer() {
  const fixed = (state.info.auth && state.info.auth.reviewer) || "";
  let name = fixed;
  if (!fixed) { try { name = localStorage.getItem(REVIEWER_KEY) || ""; } catch (e) { /* storage off */ } }
  state.reviewer = name;
  el.reviewer.value = name;
  el.reviewer.readOnly = !!fixed;
  if (fixed) el.reviewer.title = "the reviewer your access token stands for";
}
el.reviewer.addEventListener("change", () => {
  state.reviewer = el.reviewer.value.trim().slice(0, 64);
  el.reviewer.value = state.reviewer;
  try { localStorage.setItem(REVIEWER_KEY, state.reviewer); } catch (e) { /* storage off */ }
});

// ---- start ------------------------------------------------------------------------------
(async () => {
  const hash = new URLSearchParams(location.hash.slice(1));
  const f = hash.has("f") ? parseInt(hash.get("f"), 10) : 0;
  try {
    await refreshResults(hash.get("r"), isNaN(f) ? 0 : f);
    setupReviewer();
    setupUpload();
  } catch (e) {
    banner(`cannot reach the lgrnet view server: ${e.message}`, true);
  }
})();

// for tests and scripts: the mask of frame i as the page holds it (a list of 0/1, row-major)
async function maskOf(i) {
  const doc = await getDoc(i);
  return doc ? { w: doc.mask.w, h: doc.mask.h, version: doc.version, data: Array.from(doc.mask.data) } : null;
}
window.lgrnetViewer = { state, goTo, render, maskOf };
