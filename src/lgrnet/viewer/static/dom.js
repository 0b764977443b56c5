// lgrnet view: the page's elements and small helpers (messages, number formats, requests).
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);
export const el = {
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
  reviewer: $("reviewer"), frameBy: $("frame-by"),
  boxBar: $("box-bar"), boxInfo: $("box-info"), boxDelete: $("box-delete"), boxCopy: $("box-copy"), boxCopyN: $("box-copy-n"),
};
export const ctx = el.canvas.getContext("2d");

export async function api(path) {
  const res = await fetch(path, { cache: "no-store" });
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const fmt = (v, d = 3) => (typeof v === "number" && isFinite(v) ? v.toFixed(d) : "–");
export function banner(text, isError) {
  el.banner.hidden = !text;
  el.banner.textContent = text || "";
  el.banner.classList.toggle("error", !!isError);
}
// who sends a write: the page's reviewer name, for the server to record (the access token's name wins)
export function reviewerHeaders() {
  return state.reviewer ? { "X-Reviewer": encodeURIComponent(state.reviewer) } : {};
}
export function saveStatus(text, isError) {
  el.saveStatus.textContent = text || "";
  el.saveStatus.classList.toggle("error", !!isError);
}

// bbox [x0, y0, x1, y1] with x1, y1 exclusive (as lgrnet predict writes it): size and top-left corner
export function fmtBox(b) {
  if (!Array.isArray(b) || b.length !== 4) return "none";
  return `${b[2] - b[0]}×${b[3] - b[1]} px at (${b[0]}, ${b[1]})`;
}
