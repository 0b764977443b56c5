// lgrnet view: the page's per-frame documents (editable masks, corrections.js; boxes, boxes.js), each
// loaded once per result and frame. A cache is two Maps keyed "<rid>/<i>": `pending` holds the
// Promise of every doc asked for, `ready` the loaded ones in load order, of which at most `limit` are
// kept (the oldest saved ones not on screen go first).
import { docKey, state } from "./state.js";
import { saveStatus } from "./dom.js";

// The doc of frame i, loading it with `load(key, rid)` (a Promise of the doc) the first time; a
// failed load is said in the status line ("cannot load <what> of frame i") and tried again next time.
// Resolves to null on failure.
export function cachedDoc(cache, i, what, load) {
  const key = docKey(i), rid = state.rid;
  if (!cache.pending.has(key)) {
    const p = (async () => {
      const doc = await load(key, rid);
      cache.ready.set(key, doc);
      trim(cache);
      return doc;
    })();
    p.catch((e) => { cache.pending.delete(key); if (rid === state.rid) saveStatus(`cannot load ${what} of frame ${i}: ${e.message}`, true); });
    cache.pending.set(key, p);
  }
  return cache.pending.get(key).catch(() => null);
}

function trim(cache) {
  for (const [key, doc] of cache.ready) {
    if (cache.ready.size <= cache.limit) break;
    if (doc.dirty || doc.saving || key === docKey(state.index)) continue;
    cache.ready.delete(key); cache.pending.delete(key);
  }
}

export function dropCached(cache, i) { cache.pending.delete(docKey(i)); cache.ready.delete(docKey(i)); }

// A failed response's message: the JSON body's "error", else the status code.
export async function errorText(res) {
  try { return (await res.json()).error || `${res.status}`; } catch (e) { return `${res.status}`; }
}
