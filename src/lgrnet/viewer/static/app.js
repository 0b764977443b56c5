// lgrnet view: the review page. Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

(function () {
  const OUTLINE_COLOR = "#39ff14";
  const FRAME_CACHE = 96;      // decoded frames kept in the page
  const PREFETCH = 12;         // frames fetched ahead while playing
  const POLL_MS = 500;

  const $ = (id) => document.getElementById(id);
  const el = {
    select: $("result-select"), banner: $("banner"), canvas: $("frame"), stage: $("stage"), stageMsg: $("stage-msg"),
    play: $("play"), prev: $("prev"), next: $("next"), slider: $("slider"), frameLabel: $("frame-label"),
    outline: $("outline"), frameInfo: $("frame-info"), curve: $("curve"), curveHover: $("curve-hover"),
    thr: $("thr"), thrValue: $("thr-value"), lowCount: $("low-count"), lowList: $("low-list"),
    dlMasks: $("dl-masks"), dlCsv: $("dl-csv"), dlOverlay: $("dl-overlay"),
    uploadBox: $("upload-box"), uploadFile: $("upload-file"), uploadBtn: $("upload-btn"),
    uploadProgress: $("upload-progress"), uploadStatus: $("upload-status"), details: $("details"),
  };
  const ctx = el.canvas.getContext("2d");

  const state = {
    info: null, rid: null, pred: null, index: 0, playing: false, playGen: 0,
    frames: new Map(), outlines: new Map(), renderGen: 0,
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
    const [img, contours] = await Promise.all([getFrame(i), getOutline(i)]);
    if (gen !== state.renderGen || rid !== state.rid) return; // a newer frame was asked for
    const w = state.pred.width || (img && img.naturalWidth) || 640;
    const h = state.pred.height || (img && img.naturalHeight) || 480;
    const k = fitCanvas(w, h);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, el.canvas.width, el.canvas.height);
    ctx.setTransform(k, 0, 0, k, 0, 0);  // from here on, frame pixel coordinates
    ctx.imageSmoothingQuality = "high";
    if (img) {
      ctx.drawImage(img, 0, 0, w, h);
    } else {
      ctx.fillStyle = "#202428";
      ctx.fillRect(0, 0, w, h);
    }
    const show = el.outline.checked;
    if (show && contours.length) {
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
    el.canvas.dataset.scale = String(k);
    // for tests and scripts: which frame is on the canvas, and whether its outline is drawn
    el.canvas.dataset.rendered = `${rid}:${i}:${show ? 1 : 0}`;
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
      ["mask", fmt(f.mask_score)], ["area", f.area ?? "–"], ["box", fmtBox(f.bbox)], ["query", f.query ?? "–"]];
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
    const thr = +el.thr.value;
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
    // current frame
    const x = Math.round(xOf(state.index, g)) + 0.5;
    c.strokeStyle = "#39ff14"; c.lineWidth = 1;
    c.beginPath(); c.moveTo(x, PAD.t); c.lineTo(x, PAD.t + g.ph); c.stroke();
  }

  // ---- low-confidence list ----------------------------------------------------------------
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
    const thr = +el.thr.value;
    el.thrValue.textContent = thr.toFixed(2);
    const runs = lowRuns(thr);
    const count = runs.reduce((a, r) => a + r.end - r.start + 1, 0);
    el.lowCount.textContent = `${count} of ${numFrames()} frames below ${thr.toFixed(2)}` +
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
  el.thr.addEventListener("input", buildLowList);
  el.select.addEventListener("change", () => loadResult(el.select.value, 0));
  el.uploadBtn.addEventListener("click", startUpload);
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
    if (e.key === "ArrowRight") { setPlaying(false); goTo(state.index + 1); }
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

  window.lgrnetViewer = { state, goTo, render };
})();
