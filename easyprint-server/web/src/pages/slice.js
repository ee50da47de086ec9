// The slice dialog: machine profile, quality, infill, support, adhesion, temperatures; then live
// slicing progress, and the G-code appears in Files (or goes straight to the printer).
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { html, useStore, Dialog, ProgressBar } from "../ui.js";

const SUPPORT = [["none", "None"], ["buildplate", "Touching the build plate"], ["everywhere", "Everywhere"]];
const ADHESION = [["none", "None"], ["skirt", "Skirt"], ["brim", "Brim"], ["raft", "Raft"]];

export function SliceDialog({ file, printers, printer: chosen, onClose }) {
  const s = useStore();
  const [machines, setMachines] = useState(null);
  const [profile, setProfile] = useState(null);
  const [form, setForm] = useState(null);
  const [job, setJob] = useState(null);
  const [error, setError] = useState("");
  const [printer, setPrinter] = useState(chosen || printers[0]?.id || "");
  const set = (k) => (e) => setForm((f) => ({ ...f, [k]: e.target.type === "number" ? Number(e.target.value) : e.target.value }));

  const applyProfile = (machine) => {
    setProfile(machine);
    const d = machine.defaults || {};
    setForm({
      machine: machine.id,
      quality: d.quality ?? machine.qualities?.[0]?.id,
      infill_percent: d.infill_percent ?? 20,
      support: d.support ?? "none",
      adhesion: d.adhesion ?? "skirt",
      nozzle_temp: d.nozzle_temp ?? 200,
      bed_temp: d.bed_temp ?? 60,
    });
  };
  // The first answer lists the machines and describes the server's configured one.
  useEffect(() => {
    api("GET", "/api/v1/slicer/profiles").then((r) => {
      setMachines(r.machines);
      if (r.machine) applyProfile(r.machine);
      else if (r.machines[0]) chooseMachine(r.machines[0].id);
    }, (e) => setError(e.message));
  }, []);
  const chooseMachine = (id) => {
    setError("");
    setForm((f) => ({ ...f, machine: id }));
    api("GET", `/api/v1/slicer/profiles?machine=${encodeURIComponent(id)}`)
      .then((r) => applyProfile(r.machine), (e) => setError(e.message));
  };

  const submit = async (print) => {
    setError("");
    try {
      const created = await api("POST", `/api/v1/files/${file.id}/slice`, {
        printer: print && printer ? printer : undefined,
        print,
        slicing: form,
      });
      setJob({ ...created, print });
    } catch (e) {
      setError(e.message);
    }
  };

  const progress = job && s.slicing[job.id];
  // The last event names the job's new state: ready (to print), done (sliced only) or failed.
  const failed = progress?.error || progress?.stage === "failed";
  const done = !failed && ["ready", "done"].includes(progress?.stage);
  return html`<${Dialog} title=${`Slice ${file.name}`} onClose=${onClose}>
    ${job ? html`<div class="slice-progress" data-testid="slice-progress">
        ${failed ? html`<p class="error" role="alert">Slicing failed: ${progress.error || "see the queue"}</p>`
          : done ? html`<p class="ok">${job.print ? "Sliced: the print is queued." : "Sliced: the G-code is now in your files."}</p>`
          : html`<p>Slicing… ${progress?.stage ?? "waiting for the slicer"}</p>`}
        <${ProgressBar} value=${(progress?.progress ?? 0) * 100} />
        <div class="row"><button onClick=${onClose}>${done || failed ? "Close" : "Hide (keeps slicing)"}</button></div>
      </div>`
    : !form || !profile ? html`${error ? html`<p class="error" role="alert">${error}</p>` : html`<p>Loading profiles…</p>`}`
    : html`<form class="slice" onSubmit=${(e) => e.preventDefault()}>
        <label>Printer profile<select name="machine" value=${form.machine} onChange=${(e) => chooseMachine(e.target.value)}>
          ${groupByManufacturer(machines).map(([maker, list]) => html`<optgroup label=${maker}>
            ${list.map((m) => html`<option value=${m.id}>${m.name}</option>`)}</optgroup>`)}</select></label>
        <label>Quality<select name="quality" value=${form.quality} onChange=${set("quality")}>
          ${(profile.qualities || []).map((q) => html`<option value=${q.id}>${q.name ?? q.id}${q.layer_height ? ` (${q.layer_height} mm)` : ""}</option>`)}</select></label>
        <label>Infill %<input name="infill" type="number" min="0" max="100" value=${form.infill_percent} onInput=${set("infill_percent")} /></label>
        <label>Support<select name="support" value=${form.support} onChange=${set("support")}>
          ${SUPPORT.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label>
        <label>Adhesion<select name="adhesion" value=${form.adhesion} onChange=${set("adhesion")}>
          ${ADHESION.map(([v, t]) => html`<option value=${v}>${t}</option>`)}</select></label>
        <label>Nozzle °C<input name="nozzle" type="number" min="0" max="300" value=${form.nozzle_temp} onInput=${set("nozzle_temp")} /></label>
        <label>Bed °C<input name="bed" type="number" min="0" max="130" value=${form.bed_temp} onInput=${set("bed_temp")} /></label>
        ${printers.length > 1 && html`<label>Print on<select value=${printer} onChange=${(e) => setPrinter(e.target.value)}>
          ${printers.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select></label>`}
        ${error && html`<p class="error wide" role="alert">${error}</p>`}
        <div class="row wide">
          <button type="button" onClick=${() => submit(false)}>Slice only</button>
          <button type="button" class="primary" disabled=${printers.length === 0} onClick=${() => submit(true)}>Slice and print</button>
        </div>
      </form>`}
  <//>`;
}

function groupByManufacturer(machines) {
  const groups = new Map();
  for (const m of [...machines].sort((a, b) => (a.name ?? a.id).localeCompare(b.name ?? b.id))) {
    const maker = m.manufacturer || "Other";
    if (!groups.has(maker)) groups.set(maker, []);
    groups.get(maker).push({ id: m.id, name: m.name ?? m.id });
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}
