// Settings: notifications, password, API keys and app-key requests (slicers asking for a key),
// and for administrators users and printers. Slicing profiles are chosen per slice in the slice
// dialog; the list below shows which the server offers.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { html, useStore, useLoad, attempt, changed, formatTime } from "../ui.js";

export function Settings({ user }) {
  useEffect(() => {
    if (location.pathname === "/appkeys") document.getElementById("appkeys")?.scrollIntoView();
  }, []);
  return html`<div class="grid settings">
    <${AppKeys} />
    <${ApiKeys} />
    <${Notifications} />
    <${Password} />
    ${user.admin && html`<${Users} me=${user} />`}
    ${user.admin && html`<${Printers} />`}
    <${Profiles} />
  </div>`;
}

function Notifications() {
  const supported = "Notification" in window;
  const [permission, setPermission] = useState(supported ? Notification.permission : "unsupported");
  return html`<section class="card"><h2>Notifications</h2>
    <p class="muted">Finished and failed prints always show here in the page. The browser can also tell you when this tab is in the background.</p>
    ${permission === "granted" ? html`<p class="ok">Browser notifications are on.</p>`
      : permission === "unsupported" ? html`<p class="muted">This browser has no notifications.</p>`
      : html`<button onClick=${() => Notification.requestPermission().then(setPermission)}>Enable browser notifications</button>`}
  </section>`;
}

function Password() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const submit = async (e) => {
    e.preventDefault();
    const ok = await attempt(() => api("PUT", "/api/v1/users/me/password", { current_password: current, new_password: next }),
      "Password changed; other sessions were signed out");
    if (ok !== undefined) { setCurrent(""); setNext(""); }
  };
  return html`<section class="card"><h2>Password</h2>
    <form onSubmit=${submit}>
      <label>Current password<input type="password" autocomplete="current-password" required value=${current} onInput=${(e) => setCurrent(e.target.value)} /></label>
      <label>New password (at least 8 characters)<input type="password" autocomplete="new-password" required minlength="8" value=${next} onInput=${(e) => setNext(e.target.value)} /></label>
      <button type="submit">Change password</button>
    </form></section>`;
}

function ApiKeys() {
  const [keys, error, reload] = useLoad(() => api("GET", "/api/v1/keys"));
  const [label, setLabel] = useState("");
  const [password, setPassword] = useState("");
  const [created, setCreated] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const result = await attempt(() => api("POST", "/api/v1/keys", { label, password }));
    if (result) {
      setCreated(result.api_key);
      setLabel("");
      setPassword("");
      reload();
    }
  };
  return html`<section class="card"><h2>API keys</h2>
    <p class="muted">For slicers ("send to OctoPrint": this server's address and a key) and scripts.</p>
    ${error && html`<p class="error">${error.message}</p>`}
    <ul class="plain">${(keys || []).map((k) => html`<li key=${k.id}>${k.label} <span class="muted">${formatTime(k.created_at)}</span>
      <button class="danger small" onClick=${() => confirm(`Delete key ${k.label}?`) && attempt(() => api("DELETE", `/api/v1/keys/${k.id}`), "Key deleted").then(reload)}>Delete</button></li>`)}</ul>
    ${created && html`<p class="ok">New key (copy it now, it is shown only once): <code class="key" data-testid="new-key">${created}</code></p>`}
    <form onSubmit=${submit}>
      <label>Label<input required maxlength="100" value=${label} onInput=${(e) => setLabel(e.target.value)} placeholder="PrusaSlicer" /></label>
      <label>Your password<input type="password" required autocomplete="current-password" value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
      <button type="submit">Create key</button>
    </form></section>`;
}

function AppKeys() {
  const [pending, error, reload] = useLoad(() => api("GET", "/api/v1/appkeys/pending"));
  useEffect(() => {
    const timer = setInterval(reload, 3000);
    return () => clearInterval(timer);
  }, []);
  const decide = (r, approve) => attempt(() => api("POST", `/api/v1/appkeys/pending/${encodeURIComponent(r.id)}`, { approve }),
    approve ? `${r.app} may now use this server` : `${r.app} was denied`).then(reload);
  return html`<section class="card" id="appkeys"><h2>Applications asking for access</h2>
    <p class="muted">Slicers such as Cura ask here for an API key. Approve only requests you started.</p>
    ${error && html`<p class="error">${error.message}</p>`}
    ${pending && pending.length === 0 && html`<p class="muted">No pending requests.</p>`}
    <ul class="plain">${(pending || []).map((r) => html`<li key=${r.id}>${r.app} <span class="muted">(${r.age_secs} s ago)</span>
      <button class="primary small" onClick=${() => decide(r, true)}>Approve</button>
      <button class="small" onClick=${() => decide(r, false)}>Deny</button></li>`)}</ul>
  </section>`;
}

function Users({ me }) {
  const [users, error, reload] = useLoad(() => api("GET", "/api/v1/users"));
  const [form, setForm] = useState({ name: "", password: "", admin: false });
  const submit = async (e) => {
    e.preventDefault();
    if (await attempt(() => api("POST", "/api/v1/users", form), `User ${form.name} created`)) {
      setForm({ name: "", password: "", admin: false });
      reload();
    }
  };
  return html`<section class="card"><h2>Users</h2>
    ${error && html`<p class="error">${error.message}</p>`}
    <ul class="plain">${(users || []).map((u) => html`<li key=${u.id}>${u.name} ${u.admin && html`<span class="muted">administrator</span>`}
      ${u.id !== me.id && html`<button class="danger small" onClick=${() => confirm(`Delete user ${u.name}?`) && attempt(() => api("DELETE", `/api/v1/users/${u.id}`), "User deleted").then(reload)}>Delete</button>`}</li>`)}</ul>
    <form onSubmit=${submit}>
      <label>Name<input required value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} /></label>
      <label>Password<input type="password" required minlength="8" autocomplete="new-password" value=${form.password} onInput=${(e) => setForm({ ...form, password: e.target.value })} /></label>
      <label class="chip"><input type="checkbox" checked=${form.admin} onChange=${(e) => setForm({ ...form, admin: e.target.checked })} />administrator</label>
      <button type="submit">Add user</button>
    </form></section>`;
}

const EMPTY_PRINTER = { id: "", name: "", port: "virtual", baudrate: 115200, autoconnect: true };

function Printers() {
  const s = useStore();
  const printers = Object.values(s.printers);
  const [editing, setEditing] = useState(null);
  const save = async (e) => {
    e.preventDefault();
    const body = {
      id: editing.isNew ? editing.id : undefined,
      name: editing.name || undefined,
      port: editing.port,
      baudrate: Number(editing.baudrate),
      autoconnect: editing.autoconnect,
      // A simulated printer keeps its simulation settings when it is edited.
      simulation: editing.port === "virtual" ? editing.simulation ?? undefined : undefined,
    };
    const done = editing.isNew
      ? await attempt(() => api("POST", "/api/v1/printers", body), `Printer ${body.id} added`)
      : await attempt(() => api("PUT", `/api/v1/printers/${encodeURIComponent(editing.id)}`, body), `Printer ${editing.id} saved`);
    if (done) {
      setEditing(null);
      // The printer_status topic follows with its connection state.
      s.printers[done.id] = done;
      changed();
    }
  };
  const remove = async (p) => {
    if (!confirm(`Remove printer ${p.name}?`)) return;
    if ((await attempt(() => api("DELETE", `/api/v1/printers/${encodeURIComponent(p.id)}`), `Printer ${p.name} removed`)) !== undefined) {
      delete s.printers[p.id];
      changed();
    }
  };
  const field = (k) => (e) => setEditing({ ...editing, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  return html`<section class="card"><h2>Printers</h2>
    <ul class="plain">${printers.map((p) => html`<li key=${p.id}>${p.name} <span class="muted">${p.port} @ ${p.baudrate}</span>
      <button class="small" onClick=${() => setEditing({ ...EMPTY_PRINTER, ...p, isNew: false })}>Edit</button>
      <button class="danger small" onClick=${() => remove(p)}>Remove</button></li>`)}</ul>
    ${editing ? html`<form onSubmit=${save}>
        <label>Id (letters, digits, - and _)<input required name="printer-id" pattern="[A-Za-z0-9_-]+" disabled=${!editing.isNew} value=${editing.id} onInput=${field("id")} /></label>
        <label>Name<input value=${editing.name} onInput=${field("name")} /></label>
        <label>Port (a serial device such as /dev/ttyUSB0, or "virtual" for the simulator)<input required value=${editing.port} onInput=${field("port")} /></label>
        <label>Baud rate<select value=${editing.baudrate} onChange=${field("baudrate")}>
          ${[115200, 250000, 57600, 230400].map((b) => html`<option value=${b}>${b}</option>`)}</select></label>
        <label class="chip"><input type="checkbox" checked=${editing.autoconnect} onChange=${field("autoconnect")} />connect at start</label>
        <div class="row"><button class="primary" type="submit">Save</button><button type="button" onClick=${() => setEditing(null)}>Cancel</button></div>
      </form>`
      : html`<button onClick=${() => setEditing({ ...EMPTY_PRINTER, isNew: true })}>Add printer</button>`}
  </section>`;
}

function Profiles() {
  const [profiles, error] = useLoad(() => api("GET", "/api/v1/slicer/profiles"));
  const m = profiles?.machine;
  const name = m && (profiles.machines.find((x) => x.id === m.id)?.name ?? m.id);
  const d = m?.defaults;
  return html`<section class="card"><h2>Slicing profiles</h2>
    ${error && html`<p class="error">${error.message}</p>`}
    ${m && html`<p data-testid="default-profile">Print (without the slice dialog) uses <strong>${name}</strong>:
      ${d.quality ?? "default"} quality, ${d.infill_percent} % infill, support ${d.support}, adhesion ${d.adhesion},
      nozzle ${d.nozzle_temp} °C, bed ${d.bed_temp} °C. The server's configuration (<code>[slicer]</code>) sets it.</p>`}
    ${profiles && html`<details><summary>${profiles.machines.length} printer profiles from Cura's definitions, for the slice dialog</summary>
      <ul class="plain profiles">${profiles.machines.map((x) => html`<li key=${x.id}>${x.name} <span class="muted">${x.manufacturer}</span></li>`)}</ul></details>`}
  </section>`;
}
