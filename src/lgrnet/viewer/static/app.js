// lgrnet view: the review page. Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

(function () {
  const OUTLINE_COLOR = "#39ff14";
  const FRAME_CACHE = 96;      // decoded frames kept in the page
  const PREFETCH = 12;         // frames fetched ahead while playing
  const POLL_MS = 500;
  const FILL_RGBA = [57, 255, 20, 72];  // the translucent fill over the mask
  const MASK_DOCS = 24;        // frames' editable masks kept in the page (with their undo history)
  const ZOOM_MAX = 32;
  const M = window.lgrnetMask;  // editor.js

  const $ = (id) => document.getElementById(id);
  const el = {
    select: $("result-select"), banner: $("banner"), canvas: $("frame"), stage: $("stage"), stageMsg: $("stage-msg"),
    play: $("play"), prev: $("prev"), next: $("next"), slider: $("slider"), frameLabel: $("frame-label"),
    outline: $("outline"), frameInfo: $("frame-info"), curve: $("curve"), curveHover: $("curve-hover"),
    thr: $("thr"), thrValue: $("thr-value"), lowCount: $("low-count"), lowList: $("low-list"),
    dlMasks: $("dl-masks"), dlCsv: $("dl-csv"), dlOverlay: $("dl-overlay"),
    uploadBox: $("upload-box"), uploadFile: $("upload-file"), uploadBtn: $("upload-btn"),
    uploadProgress: $("upload-progress"), uploadStatus: $("upload-status"), details: $("details"),
    toolButtons: document.querySelectorAll("#edit-bar [data-tool]"), brushSize: $("brush-size"),
    brushSizeValue: $("brush-size-value"), undo: $("undo"), redo: $("redo"), clear: $("clear-frame"),
    copyPrev: $("copy-prev"), revert: $("revert"), maskFill: $("mask-fill"), zoomIn: $("zoom-in"),
    zoomOut: $("zoom-out"), zoomFit: $("zoom-fit"), zoomValue: $("zoom-value"), frameState: $("frame-state"),
    markChecked: $("mark-checked"), nextUnchecked: $("next-unchecked"), nextLow: $("next-low"),
    reloadFrame: $("reload-frame"), saveStatus: $("save-status"), reviewCount: $("review-count"),
  };
  const ctx = el.canvas.getContext("2d");

  const state = {
    info: null, rid: null, pred: null, index: 0, playing: false, playGen: 0,
    frames: new Map(), outlines: new Map(), renderGen: 0,
    // corrections: the saved states ({"000003": {state, time, version}}), the frames' editable masks,
    // the tool, the view (zoom 1 = the frame fits; ox, oy: the frame point at the canvas's top-left)
    corr: { frames: {}, writable: false }, docs: new Map(), ready: new Map(), tool: "view",
    view: { zoom: 1, ox: 0, oy: 0 }, k0: 1, k: 1, stroke: null, pan: null, poly: null, hover: null,
    fillPainted: null, fillCanvas: document.createElement("canvas"),
    // the low-confidence threshold, exact (the slider's 0.01 steps would round a recorded 0.921 to 0.92);
    // thrTouched: the user moved the slider, so later results keep it
    thr: 0.5, thrTouched: false,
  };

  // ---- helpers ----------------------------------------------------------------------------
  async function api(path) {
    const res = await fetch(path, { cache: "no-store" });
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const fmt = (v, d = 3) => (typeof v === "number" && isFinite(v) ? v.toFixed(d) : "–");
  function banner(text, isError) {
    el.banner.hidden = !text;
    el.banner.textContent = text || "";
    el.banner.classList.toggle("error", !!isError);
  }
  function numFrames() { return state.pred ? state.pred.frames.length : 0; }
  function frameUrl(i) { return `/api/results/${encodeURIComponent(state.rid)}/frames/${i}.jpg`; }
  function base() { return `/api/results/${encodeURIComponent(state.rid)}`; }
  function trimCache(map) {
    while (map.size > FRAME_CACHE) map.delete(map.keys().next().value);
  }

  // ---- frames and outlines ----------------------------------------------------------------
  function getFrame(i) {
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
  function getOutline(i) {
    const key = `${state.rid}/${i}`;
    if (!state.outlines.has(key)) {
      const p = api(`${base()}/outlines/${i}.json`).then((o) => o.contours).catch(() => []);
      state.outlines.set(key, p);
      trimCache(state.outlines);
    }
    return state.outlines.get(key);
  }
  function prefetch(from, count) {
    const n = numFrames();
    for (let i = from; i < Math.min(n, from + count); i++) { getFrame(i); getOutline(i); }
  }

  async function render() {
    const gen = ++state.renderGen;
    const i = state.index, rid = state.rid;
    const fromPixels = maskFromPixels(i);
    const [img, contours, doc] = await Promise.all([getFrame(i), fromPixels ? [] : getOutline(i),
      fromPixels ? getDoc(i) : null]);
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
    drawToolHints(k, dpr);
    if (doc) updateReview();  // undo / redo follow the mask
    el.canvas.dataset.scale = String(k);
    el.canvas.dataset.view = `${state.view.zoom},${ox},${oy}`;
    el.canvas.dataset.mask = doc ? `${i}:${doc.version}:${doc.rev}` : "";
    // for tests and scripts: which frame is on the canvas, and whether its outline is drawn
    el.canvas.dataset.rendered = `${rid}:${i}:${show ? 1 : 0}`;
  }
  let renderQueued = false;
  function renderSoon() {  // at most once per animation frame (pointer moves)
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; render(); });
  }

  // the brush's circle under the pointer, and the polygon being drawn
  function drawToolHints(k, dpr) {
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
  function clampView(w, h) {
    const v = state.view;
    if (v.zoom <= 1) { v.zoom = 1; v.ox = 0; v.oy = 0; return; }
    const k = state.k0 * v.zoom, vw = el.canvas.width / k, vh = el.canvas.height / k;
    v.ox = vw >= w ? (w - vw) / 2 : Math.max(0, Math.min(w - vw, v.ox));
    v.oy = vh >= h ? (h - vh) / 2 : Math.max(0, Math.min(h - vh, v.oy));
  }
  function setZoom(z, at) {  // at: [x, y] in canvas pixels that stays put (default: the centre)
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
  function fitCanvas(w, h) {
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

  // bbox [x0, y0, x1, y1] with x1, y1 exclusive (as lgrnet predict writes it): size and top-left corner
  function fmtBox(b) {
    if (!Array.isArray(b) || b.length !== 4) return "none";
    return `${b[2] - b[0]}×${b[3] - b[1]} px at (${b[0]}, ${b[1]})`;
  }

  // ---- corrections: the frame's mask as pixels, the tools, saving ---------------------------
  const frameKey = (i) => String(i).padStart(6, "0");
  function frameStatus(i) { return state.corr.frames[frameKey(i)] || null; }
  function frameStateName(i) { const s = frameStatus(i); return s ? s.state : "unchecked"; }
  // the outline is drawn from the mask's pixels when the frame was corrected, while editing, or filled
  function maskFromPixels(i) {
    return state.tool !== "view" || el.maskFill.checked || frameStateName(i) === "edited";
  }
  function docKey(i) { return `${state.rid}/${i}`; }

  // A frame's editable mask: {key, rid, i, mask: {w, h, data}, version, history, rev, ...}, from
  // GET corrections/<i>.png (the reviewer's mask if saved, else the model's).
  function getDoc(i) {
    const key = docKey(i), rid = state.rid;
    if (!state.docs.has(key)) {
      const p = (async () => {
        const res = await fetch(`${base()}/corrections/${i}.png`, { cache: "no-store" });
        if (!res.ok) {
          let msg = `${res.status}`;
          try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
          throw new Error(msg);
        }
        const version = parseInt(res.headers.get("X-Mask-Version") || "0", 10);
        const bitmap = await createImageBitmap(await res.blob());
        const doc = { key, rid, i, mask: M.maskFromImage(bitmap), version, source: res.headers.get("X-Mask-Source"),
          history: new M.History(40), rev: 0, paintRect: "all", saving: false, pending: false, dirty: false, conflict: null };
        bitmap.close();
        state.ready.set(key, doc);
        trimDocs();
        return doc;
      })();
      p.catch((e) => { state.docs.delete(key); if (rid === state.rid) saveStatus(`cannot load the mask of frame ${i + 1}: ${e.message}`, true); });
      state.docs.set(key, p);
    }
    return state.docs.get(key).catch(() => null);
  }
  function trimDocs() {  // drop the oldest masks that are saved and not on screen
    for (const [key, doc] of state.ready) {
      if (state.ready.size <= MASK_DOCS) break;
      if (doc.dirty || doc.saving || key === docKey(state.index)) continue;
      state.ready.delete(key); state.docs.delete(key);
    }
  }
  function dropDoc(i) { state.docs.delete(docKey(i)); state.ready.delete(docKey(i)); }
  // the current frame's mask, if loaded and editable; else says why not
  function editableDoc() {
    const doc = state.ready.get(docKey(state.index));
    if (!state.corr.writable) { saveStatus(state.corr.reason || "this result folder is read-only: corrections cannot be saved", true); return null; }
    if (!doc) return null;
    if (doc.conflict) { saveStatus("this frame changed elsewhere: reload it before editing", true); return null; }
    return doc;
  }

  function saveStatus(text, isError) {
    el.saveStatus.textContent = text || "";
    el.saveStatus.classList.toggle("error", !!isError);
  }
  function setFrameStatus(rid, i, body) {
    if (rid !== state.rid) return;
    if (body.state === "unchecked") delete state.corr.frames[frameKey(i)];
    else state.corr.frames[frameKey(i)] = { state: body.state, time: body.time, version: body.version };
    const doc = state.ready.get(`${rid}/${i}`);
    if (doc) doc.version = body.version;
    updateReview();
    drawCurve();
  }
  function showConflict(doc, message) {
    doc.conflict = message;
    if (doc.rid === state.rid && doc.i === state.index) {
      saveStatus(`frame ${doc.i + 1} not saved: changed in another tab or session`, true);
      el.reloadFrame.hidden = false;
    }
    banner(message, true);
  }

  // After every change: redraw, then PUT the mask with the version it replaces. One save per frame at
  // a time; changes made meanwhile go in the next one. 409: another tab or session saved first.
  function touch(doc, rect) {  // the mask changed (in rect [x0, y0, x1, y1), or anywhere)
    doc.rev++;
    const a = doc.paintRect;
    doc.paintRect = !rect || a === "all" ? "all"
      : a ? [Math.min(a[0], rect[0]), Math.min(a[1], rect[1]), Math.max(a[2], rect[2]), Math.max(a[3], rect[3])] : rect;
  }
  function strokeRect(x0, y0, x1, y1, r) {
    return [Math.floor(Math.min(x0, x1) - r) - 1, Math.floor(Math.min(y0, y1) - r) - 1,
      Math.ceil(Math.max(x0, x1) + r) + 2, Math.ceil(Math.max(y0, y1) + r) + 2];
  }
  function changed(doc, touched) {
    if (!touched) touch(doc);
    doc.dirty = true;
    updateReview();
    render();
    save(doc);
  }
  async function save(doc) {
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
          headers: { "Content-Type": "image/png", "X-Expected-Version": String(doc.version) },
        });
        let body = {};
        try { body = await res.json(); } catch (e) { /* not JSON */ }
        if (res.status === 409) { showConflict(doc, body.error || "changed elsewhere"); return; }
        if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
        doc.version = body.version;
        if (doc.rev === rev) doc.dirty = false;
        setFrameStatus(doc.rid, doc.i, body);
      } while (doc.pending);
      if (here()) saveStatus(`frame ${doc.i + 1}: saved, version ${doc.version}`);
    } catch (e) {
      if (here()) saveStatus(`frame ${doc.i + 1} not saved: ${e.message}`, true);
    } finally {
      doc.saving = false;
    }
  }
  async function postState(i, want) {
    const rid = state.rid, st = frameStatus(i);
    let body = {};
    const res = await fetch(`${base()}/corrections/${i}/status`, {
      method: "POST", cache: "no-store", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ state: want, version: st ? st.version : 0 }),
    });
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (res.status === 409) {
      banner(body.error, true);
      saveStatus(`frame ${i + 1}: changed in another tab or session; reload it`, true);
      el.reloadFrame.hidden = false;
      return false;
    }
    if (!res.ok) { saveStatus(`frame ${i + 1}: ${body.error || res.status}`, true); return false; }
    setFrameStatus(rid, i, body);
    saveStatus(`frame ${i + 1}: ${body.state}, version ${body.version}`);
    return true;
  }

  // an operation on the current frame's mask: record for undo, apply, keep it if it changed anything
  function operate(fn) {
    const doc = editableDoc();
    if (!doc) return;
    doc.history.record(doc.mask);
    if (fn(doc) > 0) changed(doc);
    else { doc.history.undos.pop(); render(); }
  }
  function undoRedo(redo) {
    const doc = editableDoc();
    if (doc && (redo ? doc.history.redo(doc.mask) : doc.history.undo(doc.mask))) changed(doc);
  }
  async function copyPrevious() {
    const i = state.index;
    if (i === 0) { saveStatus("frame 1 has no previous frame", true); return; }
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
  async function revertFrame() {
    const i = state.index;
    if (frameStateName(i) === "unchecked" || busy(i)) return;
    if (frameStateName(i) === "edited" &&
        !window.confirm(`Drop your corrections of frame ${i + 1} and go back to the model's mask?`)) return;
    if (await postState(i, "unchecked")) { dropDoc(i); render(); }
  }
  async function reloadFrame() {
    const i = state.index;
    try { state.corr = await api(`${base()}/corrections`); } catch (e) { /* keep what we have */ }
    dropDoc(i);
    el.reloadFrame.hidden = true;
    banner("", false);
    saveStatus(`frame ${i + 1}: reloaded`);
    updateReview();
    render();
  }
  function busy(i) {  // a change of this frame not yet saved: its state is about to become "edited"
    const doc = state.ready.get(docKey(i));
    return !!(doc && (doc.dirty || doc.saving));
  }
  function toggleChecked() {
    const i = state.index, s = frameStateName(i);
    if (busy(i)) { saveStatus(`frame ${i + 1}: saving…`); return; }
    if (s === "edited") { saveStatus(`frame ${i + 1} is edited: revert it to the model's mask to mark that one checked`, true); return; }
    postState(i, s === "checked" ? "unchecked" : "checked");
  }
  function jump(pred, what) {
    const n = numFrames();
    for (let s = 1; s <= n; s++) {
      const i = (state.index + s) % n;
      if (pred(i)) { setPlaying(false); goTo(i); return; }
    }
    saveStatus(`no ${what} frame left`);
  }

  function setTool(tool) {
    if (tool !== "view" && state.tool === "view" && !state.fillChosen) el.maskFill.checked = true;  // once: show the fill
    state.tool = tool;
    state.poly = null;
    for (const b of el.toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    el.canvas.classList.toggle("drawing", tool !== "view");
    render();
  }
  function updateReview() {
    if (!state.pred) return;
    const i = state.index, s = frameStateName(i), doc = state.ready.get(docKey(i));
    el.frameState.textContent = s;
    el.frameState.dataset.state = s;
    el.markChecked.textContent = s === "checked" ? "Checked ✓" : "Mark checked";
    el.markChecked.disabled = !state.corr.writable || s === "edited" || busy(i);
    el.revert.disabled = !state.corr.writable || s === "unchecked";
    el.undo.disabled = !(doc && doc.history.canUndo);
    el.redo.disabled = !(doc && doc.history.canRedo);
    el.reloadFrame.hidden = !(doc && doc.conflict);
    let checked = 0, edited = 0;
    for (const v of Object.values(state.corr.frames)) { if (v.state === "checked") checked++; else if (v.state === "edited") edited++; }
    el.reviewCount.textContent = `${checked} checked, ${edited} edited, ${numFrames() - checked - edited} to review`;
  }

  // pointer -> frame coordinates (continuous; pixel (x, y) covers [x, x+1))
  function framePoint(e) {
    const r = el.canvas.getBoundingClientRect();
    const cx = (e.clientX - r.left) * (el.canvas.width / r.width), cy = (e.clientY - r.top) * (el.canvas.height / r.height);
    return [cx / state.k + state.view.ox, cy / state.k + state.view.oy, cx, cy];
  }
  function closePolygon(erase) {
    const poly = state.poly;
    state.poly = null;
    if (!poly || poly.pts.length < 3) { render(); return; }
    operate((doc) => M.fillPolygon(doc.mask, poly.pts, erase ? 0 : 1));
  }
  function onPointerDown(e) {
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
  function onPointerMove(e) {
    if (!state.pred) return;
    const [fx, fy, cx, cy] = framePoint(e);
    state.hover = [fx, fy];
    if (state.pan) {
      state.view.ox = state.pan.ox - (cx - state.pan.x) / state.k;
      state.view.oy = state.pan.oy - (cy - state.pan.y) / state.k;
      renderSoon();
      return;
    }
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
  function onPointerUp() {
    state.pan = null;
    const st = state.stroke;
    if (!st) return;
    state.stroke = null;
    if (st.changed) changed(st.doc, true);
    else { st.doc.history.undos.pop(); }
  }

  // ---- navigation -------------------------------------------------------------------------
  function goTo(i) {
    const n = numFrames();
    if (!n) return;
    i = Math.max(0, Math.min(n - 1, Math.round(i)));
    state.index = i;
    el.slider.value = String(i);
    const f = state.pred.frames[i] || {};
    el.frameLabel.textContent = `frame ${i + 1} / ${n}`;
    const items = [["name", f.name ?? "–"], ["confidence", fmt(f.score)], ["class", fmt(f.class_score)],
      ["mask", fmt(f.mask_score)], ["clip", fmt(f.clip_mask_score)], ["area", f.area ?? "–"], ["box", fmtBox(f.bbox)], ["query", f.query ?? "–"]];
    el.frameInfo.replaceChildren(...items.map(([k, v]) => {
      const d = document.createElement("div");
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = String(v);
      d.append(dt, dd);
      return d;
    }));
    for (const b of el.lowList.querySelectorAll("button")) {
      b.classList.toggle("current", i >= +b.dataset.start && i <= +b.dataset.end);
    }
    drawCurve();
    history.replaceState(null, "", `#r=${encodeURIComponent(state.rid)}&f=${i}`);
    if (state.poly && state.poly.key !== `${state.rid}/${i}`) state.poly = null;
    updateReview();
    render();
  }

  function setPlaying(on) {
    state.playing = on;
    el.play.textContent = on ? "Pause" : "Play";
    if (on) playLoop(++state.playGen);
  }
  async function playLoop(gen) {
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

  // ---- confidence curve -------------------------------------------------------------------
  const PAD = { l: 34, r: 8, t: 8, b: 18 };
  function curveGeom() {
    const dpr = window.devicePixelRatio || 1;
    const w = el.curve.clientWidth, h = el.curve.clientHeight;
    return { dpr, w, h, pw: Math.max(1, w - PAD.l - PAD.r), ph: Math.max(1, h - PAD.t - PAD.b) };
  }
  function xOf(i, g) { const n = numFrames(); return PAD.l + (n > 1 ? i / (n - 1) : 0.5) * g.pw; }
  function yOf(s, g) { return PAD.t + (1 - s) * g.ph; }
  function indexAt(x, g) {
    const n = numFrames();
    return n > 1 ? Math.round(((x - PAD.l) / g.pw) * (n - 1)) : 0;
  }
  function drawCurve() {
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
    for (const s of [0, 0.5, 1]) {
      const y = Math.round(yOf(s, g)) + 0.5;
      c.beginPath(); c.moveTo(PAD.l, y); c.lineTo(PAD.l + g.pw, y); c.stroke();
      c.fillText(s.toFixed(1), 6, y + 3);
    }
    const n = numFrames();
    if (!n) return;
    c.fillText("1", PAD.l - 2, g.h - 4);
    c.fillText(String(n), PAD.l + g.pw - c.measureText(String(n)).width, g.h - 4);
    const thr = state.thr;
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
    // reviewed frames: a tick under the plot (green: checked, blue: edited)
    for (const [key, v] of Object.entries(state.corr.frames)) {
      const i = parseInt(key, 10);
      if (!(i < n)) continue;
      c.fillStyle = v.state === "checked" ? "#39ff14" : "#5fb3ff";
      c.fillRect(Math.round(xOf(i, g)) - 1, PAD.t + g.ph + 2, 2, 4);
    }
    // current frame
    const x = Math.round(xOf(state.index, g)) + 0.5;
    c.strokeStyle = "#39ff14"; c.lineWidth = 1;
    c.beginPath(); c.moveTo(x, PAD.t); c.lineTo(x, PAD.t + g.ph); c.stroke();
  }

  // ---- low-confidence list ----------------------------------------------------------------
  // two decimals for the slider's own values, up to four for a recorded threshold between them
  const fmtThr = (t) => (Math.abs(t * 100 - Math.round(t * 100)) < 1e-9 ? t.toFixed(2) : String(+t.toFixed(4)));
  function lowRuns(thr) {
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
  function buildLowList() {
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
      const label = r.start === r.end ? `frame ${r.start + 1}` : `frames ${r.start + 1}–${r.end + 1}`;
      b.title = `${names[r.start].name || ""} … lowest at frame ${r.at + 1}`;
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

  // ---- results ----------------------------------------------------------------------------
  function fillDetails(p) {
    const rows = [["source", p.input ?? "–"], ["kind", p.kind ?? "–"], ["frames", p.num_frames],
      ["size", p.width && p.height ? `${p.width} × ${p.height}` : "–"], ["fps", fmt(p.fps, 2)],
      ["folder", p.display_name]];
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

  async function loadResult(rid, frame) {
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

  async function refreshResults(selectId, frame) {
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

  // ---- upload -----------------------------------------------------------------------------
  function setupUpload() {
    const up = state.info.upload;
    el.uploadBox.disabled = !up.enabled;
    el.uploadStatus.textContent = up.enabled
      ? `A video file (${up.extensions.join(" ")}), up to ${Math.round(up.max_bytes / 2 ** 20)} MiB.`
      : `Upload is off: ${up.reason}`;
  }
  function uploadStatus(text, frac) {
    el.uploadStatus.textContent = text;
    el.uploadProgress.hidden = frac == null;
    if (frac != null) el.uploadProgress.value = frac;
  }
  function startUpload() {
    const file = el.uploadFile.files[0];
    const up = state.info.upload;
    if (!file) { uploadStatus("Choose a video file first."); return; }
    const ext = file.name.includes(".") ? file.name.slice(file.name.lastIndexOf(".")).toLowerCase() : "";
    if (!up.extensions.includes(ext)) { uploadStatus(`${file.name}: not a video file name (${up.extensions.join(" ")})`); return; }
    if (file.size > up.max_bytes) { uploadStatus(`${file.name}: larger than the ${Math.round(up.max_bytes / 2 ** 20)} MiB limit`); return; }
    el.uploadBtn.disabled = true;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/upload");
    xhr.setRequestHeader("X-Filename", encodeURIComponent(file.name));
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) uploadStatus(`Uploading ${file.name}…`, e.loaded / e.total); };
    xhr.onerror = () => { el.uploadBtn.disabled = false; uploadStatus("Upload failed (connection error)."); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* ignore */ }
      if (xhr.status !== 202) {
        el.uploadBtn.disabled = false;
        uploadStatus(`Rejected: ${body.error || xhr.status}`);
        return;
      }
      pollJob(body.id);
    };
    uploadStatus(`Uploading ${file.name}…`, 0);
    xhr.send(file);
  }
  async function pollJob(id) {
    for (;;) {
      let job;
      try { job = await api(`/api/jobs/${encodeURIComponent(id)}`); } catch (e) {
        uploadStatus(`Lost the job: ${e.message}`); el.uploadBtn.disabled = false; return;
      }
      if (job.state === "done") {
        uploadStatus(`${job.filename}: done.`);
        el.uploadBtn.disabled = false;
        await refreshResults(job.result_id, 0);
        return;
      }
      if (job.state === "error") {
        uploadStatus(`${job.filename}: failed: ${job.message}`);
        el.uploadBtn.disabled = false;
        return;
      }
      const frac = job.total ? job.done / job.total : null;
      uploadStatus(job.state === "queued" ? `${job.filename}: waiting for the model…`
        : `${job.filename}: segmenting${job.total ? ` (${job.done} / ${job.total} frames)` : "…"}`, frac ?? 0);
      await sleep(POLL_MS);
    }
  }

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
  el.undo.addEventListener("click", () => undoRedo(false));
  el.redo.addEventListener("click", () => undoRedo(true));
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
    for (const doc of state.ready.values()) if (doc.dirty || doc.saving) { e.preventDefault(); e.returnValue = ""; return; }
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
    if (f) el.curveHover.textContent = `frame ${i + 1} (${f.name ?? ""}): confidence ${fmt(f.score)}`;
  });
  window.addEventListener("resize", () => { drawCurve(); if (state.pred) render(); });
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "checkbox"))) return;
    const ctrl = e.ctrlKey || e.metaKey, key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (ctrl && key === "z") { undoRedo(e.shiftKey); e.preventDefault(); return; }
    if (ctrl && key === "y") { undoRedo(true); e.preventDefault(); return; }
    if (ctrl || e.altKey) return;
    const tools = { v: "view", b: "brush", e: "eraser", f: "fill", p: "polygon" };
    if (tools[key]) { setTool(tools[key]); }
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

  // ---- start ------------------------------------------------------------------------------
  (async () => {
    const hash = new URLSearchParams(location.hash.slice(1));
    const f = hash.has("f") ? parseInt(hash.get("f"), 10) : 0;
    try {
      await refreshResults(hash.get("r"), isNaN(f) ? 0 : f);
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
})();
