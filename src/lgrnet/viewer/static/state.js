// lgrnet view: the page's state, in one place. Every module reads and writes this one object;
// nothing else holds page state (the DOM holds only what it shows).
//
//   info         GET /api/info: {results: [...], upload: {...}, auth: {required, reviewer}}
//   rid, pred    the result on screen: its id and GET /api/results/<rid> (predictions.json + viewer fields)
//   index        the frame on screen. Frames are numbered from 0 everywhere the user sees a number:
//                the page, the URL (#r=<rid>&f=<index>), the API, predictions.json's "index" and the
//                files (masks/000013.png is frame 13)
//   playing, playGen          play/pause; playGen ends an older play loop
//   frames, outlines          the page's caches: "<rid>/<i>" -> Promise of an <img> / contours
//   renderGen                 drops a render that a newer one overtook
//   corr         the saved review states: {frames: {"000003": {state, time, version, reviewer}}, writable, reason};
//                state: checked | edited (a corrected mask) | boxed (boxes instead of a mask)
//   masks        frames' editable masks (doccache.js): {pending: "<rid>/<i>" -> Promise of a doc, ready:
//                "<rid>/<i>" -> the loaded doc, limit} (doc: {key, rid, i, mask: {w, h, data}, version,
//                source, history, rev, dirty, saving, ...})
//   boxes        frames' boxes (boxes.js), the same kind of cache (box doc: {key, rid, i, boxes:
//                [[x, y, w, h], ...], version, size: [H, W], sel, undos, ...})
//   boxDrag      the box being drawn, resized or moved (boxes.js)
//   tool         view | brush | eraser | fill | polygon | box; fillChosen: the user set the fill box himself
//   view, k0, k  zoom (1: the frame fits) and ox, oy (the frame point at the canvas's top-left);
//                k0 canvas pixels per frame pixel at zoom 1, k at the current zoom
//   stroke, pan, poly, hover  the pointer gesture in progress
//   fillPainted, fillCanvas   the translucent fill, painted for the doc with key fillPainted
//   thr, thrTouched           the low-confidence threshold, exact (the slider's 0.01 steps would round a
//                recorded 0.921 to 0.92); thrTouched: the user moved the slider, so later results keep it
//   reviewer     who corrects: the name bound to the access token, else the one typed on the page
//   curveRange   the confidence axis [lo, hi] as last drawn (scaled to the data)
//   sizes        edited frames' sizes in mm from GET sizes/<i>.json: "<rid>/<frame key>" -> {version, body}
//                (body null while asked for); the model's are predictions.json's (sizes.js)

export const OUTLINE_COLOR = "#39ff14";
export const FRAME_CACHE = 96;      // decoded frames kept in the page
export const PREFETCH = 12;         // frames fetched ahead while playing
export const POLL_MS = 500;
export const FILL_RGBA = [57, 255, 20, 72];  // the translucent fill over the mask
export const MASK_DOCS = 24;        // frames' editable masks kept in the page (with their undo history)
export const BOX_DOCS = 512;        // frames' box docs kept in the page (small: many)
export const ZOOM_MAX = 32;

export const state = {
  info: null, rid: null, pred: null, index: 0, playing: false, playGen: 0,
  frames: new Map(), outlines: new Map(), renderGen: 0,
  corr: { frames: {}, writable: false }, tool: "view", fillChosen: false,
  masks: { pending: new Map(), ready: new Map(), limit: MASK_DOCS },
  boxes: { pending: new Map(), ready: new Map(), limit: BOX_DOCS }, boxDrag: null,
  view: { zoom: 1, ox: 0, oy: 0 }, k0: 1, k: 1, stroke: null, pan: null, poly: null, hover: null,
  fillPainted: null, fillCanvas: document.createElement("canvas"),
  thr: 0.5, thrTouched: false, reviewer: "", curveRange: [0, 1], sizes: new Map(),
};

export function numFrames() { return state.pred ? state.pred.frames.length : 0; }
export function frameUrl(i) { return `/api/results/${encodeURIComponent(state.rid)}/frames/${i}.jpg`; }
export function base() { return `/api/results/${encodeURIComponent(state.rid)}`; }
export const frameKey = (i) => String(i).padStart(6, "0");
export function frameStatus(i) { return state.corr.frames[frameKey(i)] || null; }
export function frameStateName(i) { const s = frameStatus(i); return s ? s.state : "unchecked"; }
export function docKey(i) { return `${state.rid}/${i}`; }
