// Upload (drag and drop, several files, per-file progress) and the file list with analysis,
// print, slice, preview, download and delete.
import { useEffect, useState } from "preact/hooks";
import { api, upload } from "../api.js";
import { html, useStore, useLoad, attempt, toast, formatBytes, formatDuration, formatTime } from "../ui.js";
import { SliceDialog } from "./slice.js";
import { PreviewDialog } from "./preview.js";

const ACCEPT = ".stl,.3mf,.obj,.gcode,.gco,.g";

export function Files() {
  const s = useStore();
  const [files, error, reload] = useLoad(() => api("GET", "/api/v1/files"), [s.queueVersion]);
  const [uploads, setUploads] = useState([]);
  const [slicing, setSlicing] = useState(null);
  const [preview, setPreview] = useState(null);
  const printers = Object.values(s.printers);
  const [target, setTarget] = useState("");

  const start = (list) => {
    for (const file of list) {
      const entry = { key: `${Date.now()}-${Math.random()}`, name: file.name, progress: 0, state: "uploading" };
      setUploads((u) => [...u, entry]);
      const set = (patch) => setUploads((u) => u.map((x) => (x.key === entry.key ? { ...x, ...patch } : x)));
      upload(file, (p) => set({ progress: p })).then(
        () => {
          set({ progress: 1, state: "done" });
          reload();
          setTimeout(() => setUploads((u) => u.filter((x) => x.key !== entry.key)), 4000);
        },
        (e) => set({ state: "failed", error: e.message }),
      );
    }
  };

  return html`<section class="card">
    <h1>Files</h1>
    <${DropZone} onFiles=${start} />
    ${printers.length > 1 && html`<label class="chip">Print on <select name="print-on" value=${target} onChange=${(e) => setTarget(e.target.value)}>
      <option value="">the first free printer</option>
      ${printers.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select></label>`}
    ${uploads.length > 0 && html`<ul class="uploads">
      ${uploads.map((u) => html`<li key=${u.key} class=${u.state} data-testid="upload">
        <span class="name">${u.name}</span>
        <progress max="1" value=${u.progress}></progress>
        <span>${u.state === "failed" ? u.error : u.state === "done" ? "uploaded" : `${(u.progress * 100).toFixed(0)} %`}</span>
      </li>`)}
    </ul>`}
    ${error && html`<p class="error">${error.message}</p>`}
    ${files && files.length === 0 && html`<p class="muted">No files yet: drop an STL, 3MF, OBJ or G-code file above.</p>`}
    ${files && files.length > 0 && html`<div class="table-wrap"><table class="files">
      <thead><tr><th>Name</th><th>Size</th><th>Analysis</th><th>Uploaded</th><th></th></tr></thead>
      <tbody>${files.map((f) => html`<${FileRow} key=${f.id} file=${f} printer=${printers.length === 1 ? printers[0].id : target || undefined}
        onChanged=${reload} onSlice=${() => setSlicing(f)} onPreview=${() => setPreview(f)} />`)}</tbody>
    </table></div>`}
    ${slicing && html`<${SliceDialog} file=${slicing} printers=${printers} printer=${target} onClose=${() => setSlicing(null)} />`}
    ${preview && html`<${PreviewDialog} file=${preview} onClose=${() => setPreview(null)} />`}
  </section>`;
}

function DropZone({ onFiles }) {
  const [over, setOver] = useState(false);
  return html`<label class=${"drop" + (over ? " over" : "")}
    onDragOver=${(e) => { e.preventDefault(); setOver(true); }}
    onDragLeave=${() => setOver(false)}
    onDrop=${(e) => { e.preventDefault(); setOver(false); onFiles([...e.dataTransfer.files]); }}>
    <strong>Drop models or G-code here</strong>
    <span class="muted">STL, 3MF, OBJ, G-code · or click to choose</span>
    <input type="file" multiple accept=${ACCEPT} data-testid="file-input"
      onChange=${(e) => { onFiles([...e.target.files]); e.target.value = ""; }} />
  </label>`;
}

/** `parts/sub/a.gcode` → `parts/sub` (files uploaded into folders through the OctoPrint API). */
const folderOf = (path) => path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
const baseName = (path) => path.slice(path.lastIndexOf("/") + 1);

function FileRow({ file, printer, onChanged, onSlice, onPreview }) {
  const [analysis, setAnalysis] = useState(null);
  useEffect(() => {
    if (file.kind !== "gcode") return;
    api("GET", `/api/v1/files/${file.id}/analysis`).then(setAnalysis, (e) => setAnalysis({ error: e.message }));
  }, [file.id]);
  const print = async () => {
    const job = await attempt(() => api("POST", "/api/v1/jobs", { file_id: file.id, printer }));
    if (job) toast(`${file.name} is queued${file.kind === "gcode" ? "" : " for slicing"} (job ${job.id})`, "ok");
  };
  const remove = () => confirm(`Delete ${file.name}?`) &&
    attempt(() => api("DELETE", `/api/v1/files/${file.id}`), `${file.name} deleted`).then(onChanged);
  return html`<tr data-file=${file.name}>
    <td class="name"><span class=${`kind ${file.kind}`}>${file.kind === "gcode" ? "G-code" : "model"}</span> ${folderOf(file.name) && html`<span class="muted folder">${folderOf(file.name)}/</span>`}${baseName(file.name)}</td>
    <td>${formatBytes(file.size)}</td>
    <td class="analysis">${file.kind !== "gcode" ? html`<span class="muted">slice to print</span>`
      : !analysis ? "…"
      : analysis.error ? html`<span class="error">${analysis.error}</span>`
      : html`${formatDuration(analysis.estimated_time_secs)} · ${(analysis.filament_mm / 1000).toFixed(2)} m · ${analysis.layers} layers`}</td>
    <td>${formatTime(file.created_at)}</td>
    <td class="actions">
      <button class="primary" onClick=${print}
        title=${file.kind === "gcode" ? "queue this G-code" : "slice with the server's default profile, then print"}>Print</button>
      ${file.kind !== "gcode" && html`<button onClick=${onSlice}>Slice…</button>`}
      <button onClick=${onPreview}>Preview</button>
      <a class="button" href=${`/api/v1/files/${file.id}/download`} download>Download</a>
      <button class="danger" onClick=${remove}>Delete</button>
    </td>
  </tr>`;
}
