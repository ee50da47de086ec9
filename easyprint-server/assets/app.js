// Placeholder dashboard: user, printers, app-key approvals. Text is set with textContent only.
"use strict";
const $ = (id) => document.getElementById(id);

function csrfToken() {
  const match = document.cookie.split("; ").find((c) => c.startsWith("csrf_token="));
  return match ? match.slice("csrf_token=".length) : "";
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) window.location.assign("/login");
  if (!response.ok) {
    const err = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(err.error || response.statusText);
  }
  return response.status === 204 ? null : response.json();
}

function item(text, ...buttons) {
  const li = document.createElement("li");
  li.textContent = text + " ";
  for (const b of buttons) li.append(b);
  return li;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

async function refreshAppKeys() {
  const pending = await api("GET", "/api/v1/appkeys/pending");
  const list = $("appkeys");
  list.replaceChildren();
  if (pending.length === 0) list.append(item("no pending requests"));
  for (const request of pending) {
    const decide = (approve) => async () => {
      await api("POST", `/api/v1/appkeys/pending/${encodeURIComponent(request.id)}`, { approve });
      refreshAppKeys();
    };
    list.append(item(`${request.app} (${request.age_secs} s ago)`, button("Approve", decide(true)), button("Deny", decide(false))));
  }
}

async function init() {
  const me = await api("GET", "/api/v1/session");
  $("user").textContent = me.name;
  const printers = await api("GET", "/api/v1/printers");
  if (printers.length > 0) {
    $("printers").replaceChildren(...printers.map((p) => item(`${p.name} — ${p.port} @ ${p.baudrate}: ${p.state}`)));
  }
  await refreshAppKeys();
  setInterval(() => refreshAppKeys().catch(() => {}), 3000);
}

$("logout").addEventListener("click", async () => {
  await api("DELETE", "/api/v1/session");
  window.location.assign("/login");
});

init().catch((e) => { $("error").textContent = e.message; });
