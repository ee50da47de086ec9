// Each printer: state, temperatures (live chart), the running job with progress and ETA, and
// its controls (pause/resume/cancel, emergency stop, preheat, jog, home, connect).
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { html, useStore, attempt, temp, formatDuration, formatTimeMs, ProgressBar } from "../ui.js";
import { TemperatureChart } from "../chart.js";

const PRESETS = [
  ["PLA", 200, 60],
  ["PETG", 235, 80],
  ["ABS", 245, 100],
  ["Off", 0, 0],
];
const STEPS = [0.1, 1, 10, 50];

export function Dashboard() {
  const s = useStore();
  const printers = Object.values(s.printers);
  if (printers.length === 0) {
    return html`<section class="card"><h1>Dashboard</h1>
      <p>No printer is configured. An administrator can add one under <a href="#/settings">Settings</a>.</p></section>`;
  }
  return html`<div class="grid">${printers.map((p) => html`<${PrinterCard} key=${p.id} printer=${p} />`)}</div>`;
}

function PrinterCard({ printer }) {
  const s = useStore();
  const id = printer.id;
  // Progress events are the freshest numbers; the printer's state says whether it is paused.
  const summary = s.progress[id] ?? printer.job;
  const paused = printer.state === "paused";
  const since = summary?.received && !paused ? (Date.now() - summary.received) / 1000 : 0;
  const job = summary && {
    ...summary,
    paused,
    print_time: summary.print_time + since,
    print_time_left: Math.max(0, summary.print_time_left - since),
  };
  const t = printer.temperatures;
  const operational = ["operational", "printing", "paused"].includes(printer.state);
  const path = (p) => `/api/v1/printers/${encodeURIComponent(id)}${p}`;
  const post = (p, body = {}) => () => attempt(() => api("POST", path(p), body));
  return html`<section class="card printer" data-printer=${id}>
    <header>
      <h2>${printer.name}</h2>
      <span class=${`state ${printer.state}`} data-testid="state">${printer.state}</span>
    </header>
    ${printer.error && html`<p class="error">${printer.error}</p>`}
    <div class="temps">
      <div><span class="label">Hotend</span><strong data-testid="tool">${temp(t?.tool0)}</strong></div>
      <div><span class="label">Bed</span><strong data-testid="bed">${temp(t?.bed)}</strong></div>
    </div>
    <${TemperatureChart} points=${s.temperatures[id] || []} />
    ${job ? html`<div class="job" data-testid="job">
        <div class="jobline"><strong>${job.file}</strong>${job.gcode && job.gcode !== job.file && html` <span class="muted">${job.gcode}</span>`}${job.paused && html` <em>paused</em>`}</div>
        <${ProgressBar} value=${job.completion} />
        <div class="muted">elapsed ${formatDuration(job.print_time)} · left ${formatDuration(job.print_time_left)}
          · ETA ${new Date(Date.now() + job.print_time_left * 1000).toLocaleTimeString()}</div>
        <div class="row">
          ${job.paused
            ? html`<button onClick=${post("/job/resume")}>Resume</button>`
            : html`<button onClick=${post("/job/pause")}>Pause</button>`}
          <button class="danger" onClick=${() => confirm(`Cancel the print of ${job.file}?`) && post("/job/cancel")()}>Cancel</button>
        </div>
      </div>`
      : html`${printer.last_job && html`<${LastJob} last=${printer.last_job} />`}
        <p class="muted">${operational ? "Idle. Start a print from Files." : "Not connected."}</p>`}
    <div class="row">
      ${operational
        ? html`<button onClick=${() => attempt(() => api("POST", path("/disconnect")))}>Disconnect</button>`
        : html`<button class="primary" onClick=${post("/connect")}>Connect</button>`}
      <button class="danger stop" disabled=${!operational}
        onClick=${() => confirm("Emergency stop: the printer halts at once and must be reset. Continue?") && post("/emergency_stop")()}>
        Emergency stop</button>
    </div>
    ${operational && html`<${Controls} printer=${printer} busy=${!!job && !job.paused} post=${post} />`}
  </section>`;
}

/** The print that ended last on this printer (the server keeps it in its history). */
function LastJob({ last }) {
  return html`<div class="job" data-testid="last-job">
    <div class="jobline"><span class="label">Last print</span> <strong>${last.file}</strong>
      <span class=${`state ${last.result}`}>${last.result}</span></div>
    ${last.failure && html`<p class="error">${last.failure}</p>`}
    <div class="muted">ended ${formatTimeMs(last.ended_at)} after ${formatDuration((last.ended_at - last.started_at) / 1000)}</div>
  </div>`;
}

function Controls({ printer, busy, post }) {
  const [step, setStep] = useState(10);
  const id = printer.id;
  const jog = (axis, dir) => () => {
    const feed = axis === "Z" ? 600 : 3000;
    attempt(() => api("POST", `/api/v1/printers/${encodeURIComponent(id)}/commands`, {
      commands: ["G91", `G1 ${axis}${(dir * step).toFixed(2)} F${feed}`, "G90"],
    }));
  };
  return html`<details class="controls">
    <summary>Temperatures, jog and home</summary>
    <div class="row wrap">
      ${PRESETS.map(([name, tool, bed]) => html`<button onClick=${post("/temperatures", { tool0: tool, bed })}
        title=${`hotend ${tool} °C, bed ${bed} °C`}>${name}${tool ? ` ${tool}/${bed}` : ""}</button>`)}
    </div>
    <fieldset disabled=${busy}>
      <legend>Jog (mm)</legend>
      <div class="row wrap">${STEPS.map((v) => html`<label class="chip"><input type="radio" name=${`step-${id}`}
        checked=${step === v} onChange=${() => setStep(v)} />${v}</label>`)}</div>
      <div class="jog">
        ${["X", "Y", "Z"].map((a) => html`<div class="axis">
          <button onClick=${jog(a, -1)} aria-label=${`${a} minus`}>${a}−</button>
          <button onClick=${jog(a, 1)} aria-label=${`${a} plus`}>${a}+</button>
        </div>`)}
        <button onClick=${post("/home", { axes: [] })}>Home all</button>
      </div>
    </fieldset>
  </details>`;
}
