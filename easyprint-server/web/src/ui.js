// Shared bits of the interface: the htm binding, the live store, toasts, formatting helpers.
import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

/** Everything the WebSocket keeps up to date; components re-render on `changed()`. */
export const store = {
  printers: {}, // id → printer slot (printer_status)
  temperatures: {}, // id → [{t, tool, toolTarget, bed, bedTarget}], last 10 minutes
  progress: {}, // id → job summary or null (job_progress)
  slicing: {}, // job id → {stage, progress, error}
  terminal: {}, // id → [{n, line}]
  jobs: {}, // job id → the job as the REST API shows it (queue topic)
  queueVersion: 0, // bumped when a job changes state or place: lists reload
  live: "connecting",
  toasts: [],
};

/** Forgets what the last session's WebSocket delivered (another user may sign in next). */
export function resetLiveData() {
  Object.assign(store, { printers: {}, temperatures: {}, progress: {}, slicing: {}, terminal: {}, jobs: {} });
  store.queueVersion++;
  changed();
}
const subscribers = new Set();
let scheduled = false;
/** Marks the store changed; subscribers re-render once per animation frame at most. */
export function changed() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    subscribers.forEach((f) => f());
  });
}
/** Re-renders the calling component whenever the store changes. */
export function useStore() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const f = () => setTick((n) => n + 1);
    subscribers.add(f);
    return () => subscribers.delete(f);
  }, []);
  return store;
}

let toastId = 0;
/** Shows a message for a while; `kind` is "info", "ok" or "error". */
export function toast(text, kind = "info") {
  const id = ++toastId;
  store.toasts = [...store.toasts, { id, text, kind }];
  changed();
  setTimeout(() => {
    store.toasts = store.toasts.filter((t) => t.id !== id);
    changed();
  }, kind === "error" ? 10000 : 5000);
}

/** Runs an action, showing its error (the API's message) as a toast. */
export async function attempt(action, success) {
  try {
    const result = await action();
    if (success) toast(success, "ok");
    return result;
  } catch (e) {
    toast(e.message, "error");
    return undefined;
  }
}

/** Loads `load()` on mount and whenever one of `deps` changes; returns [value, error, reload]. */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ value: undefined, error: null });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (value) => live && setState({ value, error: null }),
      (error) => live && setState((s) => ({ value: s.value, error })),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return [state.value, state.error, () => setN((x) => x + 1)];
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(secs) {
  if (secs == null || !isFinite(secs)) return "–";
  secs = Math.max(0, Math.round(secs));
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

/** Seconds since the epoch (files) as local date and time. */
export function formatTime(epochSecs) {
  if (epochSecs == null) return "–";
  return new Date(epochSecs * 1000).toLocaleString();
}

/** Milliseconds since the epoch (the queue's jobs and runs) as local date and time. */
export function formatTimeMs(epochMs) {
  return epochMs == null ? "–" : formatTime(epochMs / 1000);
}

export function temp(reading) {
  if (!reading) return "–";
  return `${reading.actual.toFixed(1)} / ${reading.target.toFixed(0)} °C`;
}

/** A modal dialog; closes on Escape or the close button. */
export function Dialog({ title, onClose, children, wide }) {
  useEffect(() => {
    const key = (e) => e.key === "Escape" && onClose();
    addEventListener("keydown", key);
    return () => removeEventListener("keydown", key);
  }, [onClose]);
  return html`<div class="backdrop" onClick=${(e) => e.target === e.currentTarget && onClose()}>
    <div class=${"dialog" + (wide ? " wide" : "")} role="dialog" aria-label=${title}>
      <header><h2>${title}</h2><button class="ghost" aria-label="Close dialog" onClick=${onClose}>✕</button></header>
      ${children}
    </div>
  </div>`;
}

export function ProgressBar({ value, label }) {
  const pct = Math.max(0, Math.min(100, value));
  return html`<div class="progress" role="progressbar" aria-valuenow=${pct.toFixed(0)} aria-valuemin="0" aria-valuemax="100">
    <div class="bar" style=${{ width: `${pct}%` }}></div><span>${label ?? `${pct.toFixed(1)} %`}</span>
  </div>`;
}
