// lgrnet view: lesion sizes in millimetres (issue 32), for a result whose source carries a calibration.
// The numbers all come from the server, measured by lgrnet.results.sizes: a model mask's from
// predictions.json (area_mm2, long_axis_mm, short_axis_mm per frame; largest_lesion over the video),
// an edited frame's from GET sizes/<i>.json (the saved corrected mask). The page never measures.
import { base, frameKey, frameStatus, state } from "./state.js";
import { api, fmt } from "./dom.js";

export const NO_CALIBRATION = "no calibration: sizes in pixels only";
const mm2 = (v) => (typeof v === "number" ? `${fmt(v, 2)} mm²` : "–");
const mm = (v) => (typeof v === "number" ? `${fmt(v, 2)} mm` : "–");

export function calibrated(p) { return !!(p && p.calibration && typeof p.calibration === "object"); }

// the result's details: its calibration and the largest lesion over the video, or why there are no mm
export function summaryRows(p) {
  if (!calibrated(p)) return [["sizes", p.calibration_note ? `${NO_CALIBRATION} (${p.calibration_note})` : NO_CALIBRATION]];
  const c = p.calibration, big = p.largest_lesion || {};
  const at = (v, f) => (v && typeof v.value === "number" ? `${f(v.value)} (frame ${v.frame})` : "–");
  return [["calibration", `${fmt(c.mm_per_pixel_x, 4)} × ${fmt(c.mm_per_pixel_y, 4)} mm per pixel (${c.source || "?"})`],
    ["largest area", at(big.area_mm2, mm2)], ["largest long axis", at(big.long_axis_mm, mm)],
    ["largest short axis", at(big.short_axis_mm, mm)]];
}

// The frame's rows: [label, text]. f: its predictions.json row; edited: show the corrected mask's
// sizes, asked of the server for the saved version (state.sizes), and `redraw` once they arrive.
export function frameRows(i, f, edited, redraw) {
  if (!calibrated(state.pred)) return [["size", NO_CALIBRATION]];
  let s = f;
  if (edited) {
    s = savedSizes(i, redraw);
    const doc = state.masks.ready.get(`${state.rid}/${i}`);
    if (!s || (doc && doc.dirty)) s = { pending: true };  // dirty: changes not yet saved (nor measured)
  }
  const which = edited ? " (corrected)" : "", wait = (t) => (s.pending ? "…" : t);
  return [[`area in mm²${which}`, wait(mm2(s.area_mm2))], [`long axis${which}`, wait(mm(s.long_axis_mm))],
    [`short axis${which}`, wait(mm(s.short_axis_mm))]];
}

// the saved mask's sizes from the server, for the frame's review version; null while asked for
function savedSizes(i, redraw) {
  const st = frameStatus(i), version = st ? st.version : 0, key = `${state.rid}/${frameKey(i)}`, rid = state.rid;
  const got = state.sizes.get(key);
  if (got && got.version === version) return got.body;  // body null: the request is on its way
  state.sizes.set(key, { version, body: null });
  api(`${base()}/sizes/${i}.json`).then((body) => {
    const now = state.sizes.get(key);
    if (now && now.version === version) { now.body = body; if (rid === state.rid && i === state.index) redraw(); }
  }).catch((e) => {  // shown as "–"; asked again once the frame's version changes
    const now = state.sizes.get(key);
    if (now && now.version === version) { now.body = { error: e.message }; if (rid === state.rid && i === state.index) redraw(); }
  });
  return null;
}
