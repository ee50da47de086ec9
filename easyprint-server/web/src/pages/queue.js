// The queue (reorder, cancel, schedule for later, retry) and the history of runs.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { html, useStore, useLoad, attempt, formatDuration, formatTimeMs, ProgressBar } from "../ui.js";

const ACTIVE = new Set(["queued", "slicing", "ready", "printing", "paused", "interrupted"]);
const WAITING = new Set(["queued", "ready"]);

/** Running jobs first, then waiting ones in the order they will be claimed. */
function order(a, b) {
  const rank = (j) => (WAITING.has(j.state) ? 1 : 0);
  return rank(a) - rank(b) || (a.position ?? 0) - (b.position ?? 0) || a.id - b.id;
}

export function Queue() {
  const s = useStore();
  const [jobs, error, reload] = useLoad(() => api("GET", "/api/v1/jobs"), [s.queueVersion]);
  const [runs, historyError] = useLoad(() => api("GET", "/api/v1/history"), [s.queueVersion]);
  const [scheduling, setScheduling] = useState(null);
  // The live topic has the freshest copy of each job.
  const active = (jobs?.jobs ?? []).map((j) => s.jobs[j.id] ?? j).filter((j) => ACTIVE.has(j.state)).sort(order);
  const waiting = active.filter((j) => WAITING.has(j.state));
  const act = (job, path, body, text) => attempt(() => api("POST", `/api/v1/jobs/${job.id}${path}`, body), text).then(reload);
  const move = (job, where) => act(job, "/move", where);
  return html`<section class="card">
    <h1>Queue</h1>
    ${error && html`<p class="error">${error.message}</p>`}
    ${jobs && active.length === 0 && html`<p class="muted">Nothing queued. Print or slice a file from <a href="#/files">Files</a>.</p>`}
    ${active.length > 0 && html`<ol class="queue">${active.map((job) => {
      const slicing = s.slicing[job.id];
      const printing = Object.values(s.progress).find((p) => p?.id === job.id);
      const w = waiting.indexOf(job);
      return html`<li key=${job.id} data-job=${job.id} data-state=${job.state}>
        <div class="jobline"><strong>${job.file}</strong>
          <span class=${`state ${job.state}`}>${job.state}</span>
          ${job.kind === "model" && html`<span class="muted">${job.print === false ? "slice only" : "slice, then print"}</span>`}
          ${job.printer && html`<span class="muted">on ${job.printer}</span>`}
          ${job.not_before && html`<span class="muted" data-testid="not-before">not before ${formatTimeMs(job.not_before)}</span>`}</div>
        ${job.state === "slicing" && slicing && html`<${ProgressBar} value=${slicing.progress * 100} label=${`slicing ${(slicing.progress * 100).toFixed(0)} %`} />`}
        ${printing && html`<${ProgressBar} value=${printing.completion} />`}
        ${job.failure && html`<p class="error">${job.failure}</p>`}
        ${job.blocked && html`<p class="error" data-testid="blocked">${job.blocked}</p>
          <${Retarget} job=${job} printers=${Object.keys(s.printers)} onDone=${reload} />`}
        <div class="row wrap">
          ${w >= 0 && html`
            <button disabled=${w === 0} onClick=${() => move(job, { to: "top" })} title="claim this one next">Top</button>
            <button disabled=${w === 0} onClick=${() => move(job, { before: waiting[w - 1].id })} aria-label="move up">↑</button>
            <button disabled=${w === waiting.length - 1} onClick=${() => move(job, { after: waiting[w + 1].id })} aria-label="move down">↓</button>
            <button onClick=${() => setScheduling(job)}>Schedule…</button>`}
          ${["failed", "interrupted"].includes(job.state) && html`<button onClick=${() => act(job, "/retry", undefined, "Retrying from the start")}>Retry</button>`}
          ${job.state === "interrupted" && html`<button onClick=${() => act(job, "/abandon", undefined)}>Abandon</button>`}
          <button class="danger" onClick=${() => confirm(`Cancel ${job.file}?`) && act(job, "/cancel", undefined, "Cancelled")}>Cancel</button>
        </div>
      </li>`;
    })}</ol>`}
    ${scheduling && html`<${Schedule} job=${scheduling} onDone=${() => { setScheduling(null); reload(); }} />`}
  </section>
  <section class="card">
    <h2>History</h2>
    ${historyError && html`<p class="error">${historyError.message}</p>`}
    ${runs && runs.runs.length === 0 && html`<p class="muted">No finished runs yet.</p>`}
    ${runs && runs.runs.length > 0 && html`<div class="table-wrap"><table class="history">
      <thead><tr><th>File</th><th>What</th><th>Outcome</th><th>Started</th><th>Duration</th><th>Printer</th></tr></thead>
      <tbody>${runs.runs.map((r) => html`<tr key=${r.run} data-run=${r.run} data-result=${r.result ?? "running"}>
        <td>${r.file}</td><td>${r.kind}</td>
        <td><span class=${`state ${r.result ?? "running"}`}>${r.result ?? "running"}</span>${r.failure && html`<div class="error">${r.failure}</div>`}</td>
        <td>${formatTimeMs(r.started_at)}</td>
        <td>${formatDuration(r.duration_s)}</td>
        <td>${r.printer ?? ""}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

/** Points a job whose printer was removed at another printer (or any). */
function Retarget({ job, printers, onDone }) {
  const [to, setTo] = useState("");
  const save = () => attempt(() => api("PATCH", `/api/v1/jobs/${job.id}`, { printer: to === "" ? null : to }),
    to ? `Moved to ${to}` : "Any printer may take it").then(onDone);
  return html`<form class="row wrap" onSubmit=${(e) => { e.preventDefault(); save(); }}>
    <label>Print on <select value=${to} onChange=${(e) => setTo(e.target.value)}>
      <option value="">any printer</option>
      ${printers.map((id) => html`<option key=${id} value=${id}>${id}</option>`)}
    </select></label>
    <button type="submit">Move</button>
  </form>`;
}

function Schedule({ job, onDone }) {
  const [when, setWhen] = useState("");
  const save = (notBefore) => attempt(() => api("PATCH", `/api/v1/jobs/${job.id}`, { not_before: notBefore }),
    notBefore ? "Scheduled" : "Schedule removed").then(onDone);
  // datetime-local is the browser's local time; the API takes RFC 3339.
  return html`<form class="schedule" onSubmit=${(e) => { e.preventDefault(); when && save(new Date(when).toISOString()); }}>
    <label>Start ${job.file} not before <input type="datetime-local" required value=${when} onInput=${(e) => setWhen(e.target.value)} /></label>
    <div class="row"><button class="primary" type="submit">Schedule</button>
      <button type="button" onClick=${() => save(null)}>As soon as possible</button>
      <button type="button" onClick=${onDone}>Close</button></div>
  </form>`;
}
