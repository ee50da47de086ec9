// easyprint's browser interface: login / first-run setup, then the pages below, all fed by the
// REST API and the live WebSocket. User text is only ever rendered as text (Preact escapes it).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, connectLive, setUnauthenticatedHandler } from "./api.js";
import { html, store, changed, resetLiveData, toast, useStore } from "./ui.js";
import { Login } from "./pages/login.js";
import { Dashboard } from "./pages/dashboard.js";
import { Files } from "./pages/files.js";
import { Queue } from "./pages/queue.js";
import { Terminal } from "./pages/terminal.js";
import { Settings } from "./pages/settings.js";

const PAGES = [
  ["dashboard", "Dashboard", Dashboard],
  ["files", "Files", Files],
  ["queue", "Queue", Queue],
  ["terminal", "Terminal", Terminal],
  ["settings", "Settings", Settings],
];

function currentPage() {
  // `/appkeys` (linked by OctoPrint clients such as Cura) opens the app-key approvals.
  if (location.pathname === "/appkeys" && !location.hash) return "settings";
  const name = location.hash.replace(/^#\/?/, "");
  return PAGES.some(([id]) => id === name) ? name : "dashboard";
}

const HISTORY_SECS = 600;
let live = null;
// Until the printer list arrived, the printers the WebSocket announces wait here: its snapshot
// comes in no particular order, and every page should list the printers (and pick the first)
// in the server's order.
let unlisted = null;

/** Connects the WebSocket, loads the printer list and feeds the store. */
function startLive() {
  unlisted = {};
  const current = (live = connectLive());
  live.onState((s) => {
    store.live = s;
    // Each (re)connection brings every printer's recent terminal lines: start from those.
    if (s === "open") store.terminal = {};
    changed();
  });
  live.on("printer_status", (id, slot) => {
    // An administrator removed the printer.
    if (slot?.removed) {
      delete store.printers[id];
      delete store.terminal[id];
      changed();
      return;
    }
    if (unlisted) {
      unlisted[id] = slot;
      return;
    }
    if (!store.printers[id]) {
      // A printer this page does not know: make sure it still exists (a removed printer's last
      // status can arrive after its removal) before showing it.
      api("GET", `/api/v1/printers/${encodeURIComponent(id)}`).then((current) => {
        store.printers[id] = current;
        changed();
      }, () => {});
      return;
    }
    store.printers[id] = slot;
    if (slot && slot.job === null && store.progress[id]) store.progress[id] = null;
    changed();
  });
  live.on("temperatures", (id, t) => {
    const now = Date.now() / 1000;
    const list = (store.temperatures[id] ||= []);
    list.push({
      t: now,
      tool: t.tool0?.actual, toolTarget: t.tool0?.target,
      bed: t.bed?.actual, bedTarget: t.bed?.target,
    });
    while (list.length && list[0].t < now - HISTORY_SECS) list.shift();
    if (store.printers[id]) store.printers[id] = { ...store.printers[id], temperatures: t };
    changed();
  });
  live.on("job_progress", (id, summary) => {
    // Progress comes with each acknowledged line; the clock keeps running in between.
    store.progress[id] = summary && { ...summary, received: Date.now() };
    changed();
  });
  live.on("slicing_progress", (job, data) => {
    // A failed slice is announced once, by the notifications topic.
    store.slicing[job] = data;
    changed();
  });
  live.on("terminal", (id, data) => {
    // The recent lines come first, as one history message; then each line as it happens.
    if (data.history) {
      store.terminal[id] = data.history.map((d, i) => ({ n: i + 1, line: d.line }));
    } else {
      const lines = (store.terminal[id] ||= []);
      lines.push({ n: (lines.at(-1)?.n ?? 0) + 1, line: data.line });
      if (lines.length > 500) lines.splice(0, lines.length - 500);
    }
    changed();
  });
  live.on("queue", (id, job) => {
    const before = store.jobs[id];
    if (job) store.jobs[id] = job;
    else delete store.jobs[id];
    // Lists (queue, history, files) reload when a job changes state or place, not on every
    // progress checkpoint.
    if (!job || !before || before.state !== job.state || before.position !== job.position || before.not_before !== job.not_before) {
      store.queueVersion++;
    }
    changed();
  });
  // The print that ended last comes with the printer's status (`last_job`, from the server's
  // history), so it survives a reload.
  live.on("notifications", (_, n) => notify(n));
  const showPrinters = (list) => {
    if (live !== current) return; // signed out meanwhile
    // A slot the WebSocket sent is at least as fresh as the list.
    for (const p of list) store.printers[p.id] = unlisted?.[p.id] ?? p;
    for (const [id, p] of Object.entries(unlisted ?? {})) store.printers[id] ??= p;
    unlisted = null;
    changed();
  };
  api("GET", "/api/v1/printers").then(showPrinters, () => showPrinters([]));
}

/** Closes the WebSocket and forgets what it delivered. */
function stopLive() {
  live?.close();
  live = null;
  resetLiveData();
}

const EVENT_TEXT = {
  print_finished: "Print finished",
  print_failed: "Print failed",
  print_cancelled: "Print cancelled",
  slice_failed: "Slicing failed",
  slice_finished: "Slicing finished",
};

/** A notification from the server: a toast, and a system notification when allowed. */
function notify(n) {
  if (!n) return;
  const title = EVENT_TEXT[n.event] || n.event;
  const text = [n.file, n.failure ?? n.reason].filter(Boolean).join(": ");
  const failed = /fail/.test(n.event);
  toast(`${title}${text ? ` — ${text}` : ""}`, failed ? "error" : "ok");
  store.queueVersion++;
  if ("Notification" in window && Notification.permission === "granted" && document.visibilityState !== "visible") {
    new Notification(`easyprint: ${title}`, { body: text });
  }
}

function Toasts() {
  const { toasts } = useStore();
  return html`<div class="toasts" aria-live="polite">
    ${toasts.map((t) => html`<div key=${t.id} class=${`toast ${t.kind}`} role=${t.kind === "error" ? "alert" : "status"}>${t.text}</div>`)}
  </div>`;
}

function Shell({ user, onLogout }) {
  const [page, setPage] = useState(currentPage());
  const s = useStore();
  useEffect(() => {
    const f = () => setPage(currentPage());
    addEventListener("hashchange", f);
    return () => removeEventListener("hashchange", f);
  }, []);
  const Page = PAGES.find(([id]) => id === page)[2];
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="#/dashboard">easyprint</a>
      <nav>
        ${PAGES.map(([id, label]) => html`<a href=${`#/${id}`} class=${id === page ? "active" : ""} aria-current=${id === page ? "page" : undefined}>${label}</a>`)}
      </nav>
      <div class="who">
        <span class=${`dot ${s.live}`} title=${`live updates: ${s.live}`}></span>
        <span class="name">${user.name}</span>
        <button class="ghost" onClick=${onLogout}>Sign out</button>
      </div>
    </header>
    <main><${Page} user=${user} /></main>
    <${Toasts} />
  </div>`;
}

function App() {
  const [user, setUser] = useState(undefined);
  useEffect(() => {
    setUnauthenticatedHandler(() => {
      stopLive();
      setUser(null);
    });
    api("GET", "/api/v1/session").then(setUser, () => setUser(null));
  }, []);
  useEffect(() => {
    if (user && !live) startLive();
    if (user && location.pathname === "/login") history.replaceState(null, "", "/");
  }, [user]);
  if (user === undefined) return html`<p class="loading">Loading easyprint…</p>`;
  if (user === null) return html`<${Login} onDone=${setUser} /><${Toasts} />`;
  const logout = async () => {
    await api("DELETE", "/api/v1/session").catch(() => {});
    stopLive();
    setUser(null);
  };
  return html`<${Shell} user=${user} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById("app"));
