// lgrnet view: uploading a video and following its job.
import { POLL_MS, state } from "./state.js";
import { el, api, sleep } from "./dom.js";
import { refreshResults } from "./results.js";

// ---- upload -----------------------------------------------------------------------------
export function setupUpload() {
  const up = state.info.upload;
  el.uploadBox.disabled = !up.enabled;
  el.uploadStatus.textContent = up.enabled
    ? `A video file (${up.extensions.join(" ")}), up to ${Math.round(up.max_bytes / 2 ** 20)} MiB.`
    : `Upload is off: ${up.reason}`;
}
export function uploadStatus(text, frac) {
  el.uploadStatus.textContent = text;
  el.uploadProgress.hidden = frac == null;
  if (frac != null) el.uploadProgress.value = frac;
}
export function startUpload() {
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
export async function pollJob(id) {
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
