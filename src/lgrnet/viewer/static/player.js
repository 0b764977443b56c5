// lgrnet view: the frame on the canvas (with its outline or mask), zoom, navigation and play.
import * as M from "./editor.js";
import { OUTLINE_COLOR, FRAME_CACHE, PREFETCH, FILL_RGBA, ZOOM_MAX, numFrames, frameUrl, base, frameStateName, docKey, state } from "./state.js";
import { el, ctx, api, sleep, fmt, fmtBox } from "./dom.js";
import { maskFromPixels, getDoc, updateReview } from "./corrections.js";
import { drawCurve } from "./curve.js";
import { showBoxes, getBoxDoc, drawBoxes } from "./boxes.js";
import { frameRows } from "./sizes.js";

export function trimCache(map) {
  while (map.size > FRAME_CACHE) map.delete(map.keys().next().value);
}


// ---- frames and outlines ----------------------------------------------------------------
export function getFrame(i) {
  const key = `${state.rid}/${i}`;
  if (!state.frames.has(key)) {
    const p = new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => resolve(null);
      img.src = frameUrl(i);
    });
    state.frames.set(key, p);
    trimCache(state.frames);
  }
  return state.frames.get(key);
}
export function getOutline(i) {
  const key = `${state.rid}/${i}`;
  if (!state.outlines.has(key)) {
    const p = api(`${base()}/outlines/${i}.json`).then((o) => o.contours).catch(() => []);
    state.outlines.set(key, p);
    trimCache(state.outlines);
  }
  return state.outlines.get(key);
}
export function prefetch(from, count) {
  const n = numFrames();
  for (let i = from; i < Math.min(n, from + count); i++) { getFrame(i); getOutline(i); }
}

export async function render() {
  const gen = ++state.renderGen;
  const i = state.index, rid = state.rid;
  const fromPixels = maskFromPixels(i);
  const [img, contours, doc, boxDoc] = await Promise.all([getFrame(i), fromPixels ? [] : getOutline(i),
    fromPixels ? getDoc(i) : null, showBoxes(i) ? getBoxDoc(i) : null]);
  if (gen !== state.renderGen || rid !== state.rid) return; // a newer frame was asked for
  const w = state.pred.width || (img && img.naturalWidth) || (doc && doc.mask.w) || 640;
  const h = state.pred.height || (img && img.naturalHeight) || (doc && doc.mask.h) || 480;
  state.k0 = fitCanvas(w, h);
  clampView(w, h);
  const k = (state.k = state.k0 * state.view.zoom), { ox, oy } = state.view;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, el.canvas.width, el.canvas.height);
  ctx.setTransform(k, 0, 0, k, -ox * k, -oy * k);  // from here on, frame pixel coordinates
  ctx.imageSmoothingQuality = "high";
  ctx.imageSmoothingEnabled = state.view.zoom < 2;  // zoomed in: see the frame's pixels
  if (img) {
    ctx.drawImage(img, 0, 0, w, h);
  } else {
    ctx.fillStyle = "#202428";
    ctx.fillRect(0, 0, w, h);
  }
  ctx.imageSmoothingEnabled = true;
  const show = el.outline.checked;
  const dpr = window.devicePixelRatio || 1;
  if (doc) {
    if (el.maskFill.checked) {
      if (state.fillPainted !== doc.key || doc.paintRect) {  // repaint what changed (all of it for another frame)
        M.paintFill(doc.mask, state.fillCanvas, FILL_RGBA, state.fillPainted === doc.key && doc.paintRect !== "all" ? doc.paintRect : null);
        state.fillPainted = doc.key;
        doc.paintRect = null;
      }
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(state.fillCanvas, 0, 0);
      ctx.imageSmoothingEnabled = true;
    }
    if (show) {
      // a large frame's outline follows a brush stroke when it ends (the fill follows it live)
      const live = !state.stroke || doc.mask.w * doc.mask.h <= 400000;
      if (doc.pathRev !== doc.rev && live) { doc.path = M.outlinePath(doc.mask); doc.pathRev = doc.rev; }
      ctx.lineWidth = (2 * dpr) / k;  // 2 CSS pixels at any zoom, along the pixels' edges
      ctx.strokeStyle = OUTLINE_COLOR;
      ctx.lineJoin = "miter";
      ctx.stroke(doc.path);
    }
  } else if (show && contours.length) {
    ctx.lineWidth = (2 * (window.devicePixelRatio || 1)) / k;  // 2 CSS pixels at any zoom
    ctx.strokeStyle = OUTLINE_COLOR;
    ctx.lineJoin = "round";
    ctx.beginPath();
    for (const c of contours) {
      if (!c.length) continue;
      ctx.moveTo(c[0][0] + 0.5, c[0][1] + 0.5);  // contours run through pixel centres
      for (let q = 1; q < c.length; q++) ctx.lineTo(c[q][0] + 0.5, c[q][1] + 0.5);
      ctx.closePath();
    }
    ctx.stroke();
  }
  if (boxDoc) drawBoxes(boxDoc, k);
  drawToolHints(k, dpr);
  if (doc) {  // undo / redo and the corrected area follow the mask
    updateReview();
    if (doc.infoRev !== doc.rev && frameStateName(i) === "edited") showFrameInfo();
  }
  el.canvas.dataset.scale = String(k);
  el.canvas.dataset.view = `${state.view.zoom},${ox},${oy}`;
  el.canvas.dataset.mask = doc ? `${i}:${doc.version}:${doc.rev}` : "";
  el.canvas.dataset.boxes = boxDoc ? JSON.stringify(boxDoc.boxes) : "";  // the boxes drawn, frame pixels
  // for tests and scripts: which frame is on the canvas, and whether its outline is drawn
  el.canvas.dataset.rendered = `${rid}:${i}:${show ? 1 : 0}`;
}
let renderQueued = false;
export function renderSoon() {  // at most once per animation frame (pointer moves)
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

// the brush's circle under the pointer, and the polygon being drawn
export function drawToolHints(k, dpr) {
  const px = 1 / k;
  if (state.hover && (state.tool === "brush" || state.tool === "eraser")) {
    const r = +el.brushSize.value, [hx, hy] = state.hover;
    ctx.beginPath();
    ctx.arc(Math.floor(hx) + 0.5, Math.floor(hy) + 0.5, r, 0, 2 * Math.PI);
    ctx.lineWidth = dpr * px;
    ctx.strokeStyle = state.tool === "brush" ? "#ffffff" : "#ff5a5a";
    ctx.stroke();
  }
  const poly = state.poly;
  if (poly && poly.key === `${state.rid}/${state.index}` && poly.pts.length) {
    ctx.beginPath();
    ctx.moveTo(poly.pts[0][0], poly.pts[0][1]);
    for (const p of poly.pts.slice(1)) ctx.lineTo(p[0], p[1]);
    if (state.hover) ctx.lineTo(state.hover[0], state.hover[1]);
    ctx.setLineDash([5 * dpr * px, 4 * dpr * px]);
    ctx.lineWidth = 1.5 * dpr * px;
    ctx.strokeStyle = "#ffd98a";
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#ffd98a";
    for (const p of poly.pts) { ctx.beginPath(); ctx.arc(p[0], p[1], 3 * dpr * px, 0, 2 * Math.PI); ctx.fill(); }
  }
}

// zoom 1: the whole frame; zoomed in, the view stays on the frame (centred when the frame is smaller)
export function clampView(w, h) {
  const v = state.view;
  if (v.zoom <= 1) { v.zoom = 1; v.ox = 0; v.oy = 0; return; }
  const k = state.k0 * v.zoom, vw = el.canvas.width / k, vh = el.canvas.height / k;
  v.ox = vw >= w ? (w - vw) / 2 : Math.max(0, Math.min(w - vw, v.ox));
  v.oy = vh >= h ? (h - vh) / 2 : Math.max(0, Math.min(h - vh, v.oy));
}
export function setZoom(z, at) {  // at: [x, y] in canvas pixels that stays put (default: the centre)
  const v = state.view, k = state.k0 * v.zoom;
  const [cx, cy] = at || [el.canvas.width / 2, el.canvas.height / 2];
  const fx = cx / k + v.ox, fy = cy / k + v.oy;
  v.zoom = Math.max(1, Math.min(ZOOM_MAX, z));
  const k2 = state.k0 * v.zoom;
  v.ox = fx - cx / k2; v.oy = fy - cy / k2;
  el.zoomValue.textContent = `${Math.round(v.zoom * 100)}%`;
  el.stage.classList.toggle("zoomed", v.zoom > 1);
  render();
}

// Size the canvas to fit the stage (keeping the frame's aspect) at the screen's pixel density, so
// the outline stays a crisp 2 px line whatever the frame size. Returns canvas pixels per frame pixel.
export function fitCanvas(w, h) {
  const maxW = Math.max(100, el.stage.clientWidth), maxH = Math.max(200, window.innerHeight * 0.55);
  const s = Math.min(maxW / w, maxH / h);
  const cw = Math.max(1, Math.floor(w * s)), ch = Math.max(1, Math.floor(h * s));
  const dpr = window.devicePixelRatio || 1;
  const bw = Math.round(cw * dpr), bh = Math.round(ch * dpr);
  if (el.canvas.width !== bw || el.canvas.height !== bh) { el.canvas.width = bw; el.canvas.height = bh; }
  el.canvas.style.width = `${cw}px`;
  el.canvas.style.height = `${ch}px`;
  return bw / w;
}


// ---- the frame's details -------------------------------------------------------------------
// The model's scores, and the mask's area and box: the corrected mask's for an edited frame (once its
// pixels are loaded), else the model's (predictions.json); then its sizes in mm (sizes.js).
export function showFrameInfo() {
  const i = state.index, f = (state.pred && state.pred.frames[i]) || {};
  const doc = frameStateName(i) === "edited" ? state.masks.ready.get(docKey(i)) : null;
  let area = f.area ?? "–", box = fmtBox(f.bbox), which = "";
  if (doc) {
    if (doc.infoRev !== doc.rev) {
      let count = 0;
      for (let o = 0; o < doc.mask.data.length; o++) count += doc.mask.data[o];
      doc.info = { area: count, box: M.bounds(doc.mask) };
      doc.infoRev = doc.rev;
    }
    area = doc.info.area; box = fmtBox(doc.info.box); which = " (corrected)";
  }
  const items = [["name", f.name ?? "–"], ["confidence", fmt(f.score)], ["class", fmt(f.class_score)],
    ["mask", fmt(f.mask_score)], ["clip", fmt(f.clip_mask_score)], [`area${which}`, area], [`box${which}`, box],
    ["query", f.query ?? "–"], ...frameRows(i, f, frameStateName(i) === "edited", showFrameInfo)];
  el.frameInfo.replaceChildren(...items.map(([k, v]) => {
    const d = document.createElement("div");
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = String(v);
    d.append(dt, dd);
    return d;
  }));
  el.frameInfo.dataset.frame = `${i}:${which ? "corrected" : "model"}`;  // for tests and scripts
}

// ---- navigation -------------------------------------------------------------------------
export function goTo(i) {
  const n = numFrames();
  if (!n) return;
  i = Math.max(0, Math.min(n - 1, Math.round(i)));
  state.index = i;
  el.slider.value = String(i);
  el.frameLabel.textContent = `frame ${i} of 0–${n - 1}`;  // counted from 0, as the URL, the API and masks/000013.png
  showFrameInfo();
  for (const b of el.lowList.querySelectorAll("button")) {
    b.classList.toggle("current", i >= +b.dataset.start && i <= +b.dataset.end);
  }
  drawCurve();
  history.replaceState(null, "", `#r=${encodeURIComponent(state.rid)}&f=${i}`);
  if (state.poly && state.poly.key !== `${state.rid}/${i}`) state.poly = null;
  updateReview();
  render();
}

export function setPlaying(on) {
  state.playing = on;
  el.play.textContent = on ? "Pause" : "Play";
  if (on) playLoop(++state.playGen);
}
export async function playLoop(gen) {
  const n = numFrames();
  if (state.index >= n - 1) goTo(0);
  const fps = state.pred.fps_used || 25;
  let last = performance.now();
  while (state.playing && gen === state.playGen) {
    const next = state.index + 1;
    if (next >= n) { setPlaying(false); break; }
    prefetch(next, PREFETCH);
    await Promise.all([getFrame(next), getOutline(next)]);  // slow source: play slower, never skip
    const wait = 1000 / fps - (performance.now() - last);
    if (wait > 0) await sleep(wait);
    if (!state.playing || gen !== state.playGen) break;
    last = performance.now();
    goTo(next);
  }
}
