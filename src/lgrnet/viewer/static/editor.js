// lgrnet view: the correction tools' mask operations (an ES module). Pure functions on a binary mask, no page state.
//
// A mask is {w, h, data}: data a Uint8Array of w*h values 0/1, row-major (data[y * w + x]).
// Coordinates are frame pixels; pixel (x, y) covers [x, x+1) x [y, y+1), its centre is (x+0.5, y+0.5).

// Brush and eraser: set every pixel whose centre lies within r of the segment between the centres of
// pixels (x0, y0) and (x1, y1) (integers). A click is a segment of length 0: a disc. Returns the count
// of pixels changed.
export function stampSegment(m, x0, y0, x1, y1, r, value) {
  const r2 = r * r;
  const xa = Math.max(0, Math.floor(Math.min(x0, x1) - r)), xb = Math.min(m.w - 1, Math.ceil(Math.max(x0, x1) + r));
  const ya = Math.max(0, Math.floor(Math.min(y0, y1) - r)), yb = Math.min(m.h - 1, Math.ceil(Math.max(y0, y1) + r));
  const dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  let changed = 0;
  for (let y = ya; y <= yb; y++) {
    for (let x = xa; x <= xb; x++) {
      let t = len2 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
      if (ex * ex + ey * ey <= r2 + 1e-9) {
        const o = y * m.w + x;
        if (m.data[o] !== value) { m.data[o] = value; changed++; }
      }
    }
  }
  return changed;
}

// Fill: the 4-connected region of pixels equal to pixel (x, y), set to `value` (a click inside a
// closed outline fills it; on the mask with value 0 it erases one connected piece). Returns the count.
export function floodFill(m, x, y, value) {
  if (x < 0 || y < 0 || x >= m.w || y >= m.h) return 0;
  const { w, h, data } = m, start = y * w + x, from = data[start];
  if (from === value) return 0;
  const stack = new Int32Array(w * h);
  let top = 0, count = 0;
  stack[top++] = start;
  data[start] = value;
  while (top) {
    const o = stack[--top], px = o % w;
    count++;
    if (px > 0 && data[o - 1] === from) { data[o - 1] = value; stack[top++] = o - 1; }
    if (px < w - 1 && data[o + 1] === from) { data[o + 1] = value; stack[top++] = o + 1; }
    if (o >= w && data[o - w] === from) { data[o - w] = value; stack[top++] = o - w; }
    if (o < w * (h - 1) && data[o + w] === from) { data[o + w] = value; stack[top++] = o + w; }
  }
  return count;
}

// Polygon: set every pixel whose centre is inside the polygon (even-odd rule); pts [[x, y], ...] in
// frame coordinates. Returns the count of pixels changed.
export function fillPolygon(m, pts, value) {
  if (pts.length < 3) return 0;
  let ya = Infinity, yb = -Infinity;
  for (const p of pts) { ya = Math.min(ya, p[1]); yb = Math.max(yb, p[1]); }
  let changed = 0;
  const y0 = Math.max(0, Math.floor(ya - 0.5)), y1 = Math.min(m.h - 1, Math.ceil(yb));
  for (let y = y0; y <= y1; y++) {
    const cy = y + 0.5, xs = [];
    for (let q = 0; q < pts.length; q++) {
      const [ax, ay] = pts[q], [bx, by] = pts[(q + 1) % pts.length];
      if ((ay <= cy) !== (by <= cy)) xs.push(ax + ((cy - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((a, b) => a - b);
    for (let q = 0; q + 1 < xs.length; q += 2) {
      // pixel centres x + 0.5 in [xs[q], xs[q+1])
      const xa = Math.max(0, Math.ceil(xs[q] - 0.5)), xb = Math.min(m.w - 1, Math.ceil(xs[q + 1] - 0.5) - 1);
      for (let x = xa; x <= xb; x++) {
        const o = y * m.w + x;
        if (m.data[o] !== value) { m.data[o] = value; changed++; }
      }
    }
  }
  return changed;
}

// The mask's outline as a Path2D along pixel edges (so it is exact at any zoom): every edge between a
// mask pixel and a non-mask pixel (or the frame border), runs of edges merged into one line.
export function outlinePath(m) {
  const { w, h, data } = m, path = new Path2D(), box = bounds(m);
  if (!box) return path;
  const [bx0, by0, bx1, by1] = box;  // only the mask's bounding box has edges
  for (let y = by0; y <= by1; y++) {  // horizontal edges on the line y
    let run = -1;
    for (let x = bx0; x <= bx1; x++) {
      const a = x < w && y > 0 ? data[(y - 1) * w + x] : 0, b = x < w && y < h ? data[y * w + x] : 0;
      const edge = x < bx1 && a !== b;
      if (edge && run < 0) run = x;
      if (!edge && run >= 0) { path.moveTo(run, y); path.lineTo(x, y); run = -1; }
    }
  }
  for (let x = bx0; x <= bx1; x++) {  // vertical edges on the line x
    let run = -1;
    for (let y = by0; y <= by1; y++) {
      const a = y < h && x > 0 ? data[y * w + x - 1] : 0, b = y < h && x < w ? data[y * w + x] : 0;
      const edge = y < by1 && a !== b;
      if (edge && run < 0) run = y;
      if (!edge && run >= 0) { path.moveTo(x, run); path.lineTo(x, y); run = -1; }
    }
  }
  return path;
}

// The bounding box [x0, y0, x1, y1) of the mask's pixels, or null when it is empty (native scans).
export function bounds(m) {
  const { w, h, data } = m;
  let y0 = -1, y1 = -1, x0 = w, x1 = 0;
  for (let y = 0; y < h; y++) {
    const row = data.subarray(y * w, (y + 1) * w), first = row.indexOf(1);
    if (first < 0) continue;
    if (y0 < 0) y0 = y;
    y1 = y + 1;
    x0 = Math.min(x0, first);
    x1 = Math.max(x1, row.lastIndexOf(1) + 1);
  }
  return y0 < 0 ? null : [x0, y0, x1, y1];
}

// Paint the mask into `canvas` (w x h) as `rgba` where it is 1, transparent elsewhere; only the
// rectangle [x0, y0, x1, y1) when `rect` is given (a brush stroke's).
export function paintFill(m, canvas, rgba, rect) {
  if (canvas.width !== m.w || canvas.height !== m.h) { canvas.width = m.w; canvas.height = m.h; rect = null; }
  let [x0, y0, x1, y1] = rect || [0, 0, m.w, m.h];
  x0 = Math.max(0, x0); y0 = Math.max(0, y0); x1 = Math.min(m.w, x1); y1 = Math.min(m.h, y1);
  if (x1 <= x0 || y1 <= y0) return;
  const rw = x1 - x0, c = canvas.getContext("2d"), img = c.createImageData(rw, y1 - y0), px = img.data;
  for (let y = y0; y < y1; y++) {
    for (let x = x0, o = y * m.w + x0, q = 4 * (y - y0) * rw; x < x1; x++, o++, q += 4) {
      if (m.data[o]) { px[q] = rgba[0]; px[q + 1] = rgba[1]; px[q + 2] = rgba[2]; px[q + 3] = rgba[3]; }
    }
  }
  c.putImageData(img, x0, y0);
}

// Decode an image (an ImageBitmap or <img>) into a mask: grey > 127 is 1.
export function maskFromImage(img) {
  const w = img.width, h = img.height, c = document.createElement("canvas");
  c.width = w; c.height = h;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(img, 0, 0);
  const px = g.getImageData(0, 0, w, h).data, data = new Uint8Array(w * h);
  for (let o = 0; o < w * h; o++) data[o] = px[4 * o] > 127 ? 1 : 0;
  return { w, h, data };
}

// Encode a mask as a PNG (black 0 / white 255, opaque): what the server takes.
export function maskToPng(m) {
  const c = document.createElement("canvas");
  c.width = m.w; c.height = m.h;
  const g = c.getContext("2d"), img = g.createImageData(m.w, m.h), px = img.data;
  for (let o = 0; o < m.w * m.h; o++) {
    const v = m.data[o] ? 255 : 0, q = 4 * o;
    px[q] = px[q + 1] = px[q + 2] = v; px[q + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  return new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error("cannot encode the mask"))), "image/png"));
}

// Undo and redo of one frame's mask: snapshots of the whole mask (masks are small next to the frames).
export class History {
  constructor(limit = 40) { this.limit = limit; this.undos = []; this.redos = []; }
  record(m) {  // before an operation
    this.undos.push(m.data.slice());
    if (this.undos.length > this.limit) this.undos.shift();
    this.redos.length = 0;
  }
  undo(m) {
    if (!this.undos.length) return false;
    this.redos.push(m.data.slice());
    m.data.set(this.undos.pop());
    return true;
  }
  redo(m) {
    if (!this.redos.length) return false;
    this.undos.push(m.data.slice());
    m.data.set(this.redos.pop());
    return true;
  }
  get canUndo() { return this.undos.length > 0; }
  get canRedo() { return this.redos.length > 0; }
}

// for tests and scripts
window.lgrnetMask = { bounds, stampSegment, floodFill, fillPolygon, outlinePath, paintFill, maskFromImage, maskToPng, History };
