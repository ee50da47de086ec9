// The terminal: the printer's replies live, and G-code with a command history (up/down).
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { html, useStore } from "../ui.js";

const sent = [];
// The printer chosen here stays chosen when the user comes back to the page.
let chosen;

export function Terminal() {
  const s = useStore();
  const printers = Object.values(s.printers);
  const [printer, setPrinter] = useState(chosen);
  const [line, setLine] = useState("");
  const [cursor, setCursor] = useState(-1);
  const [error, setError] = useState("");
  const log = useRef(null);
  const id = s.printers[printer] ? printer : printers[0]?.id;
  const lines = s.terminal[id] || [];
  useEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  if (printers.length === 0) return html`<section class="card"><h1>Terminal</h1><p class="muted">No printer is configured.</p></section>`;
  const send = async (e) => {
    e.preventDefault();
    const command = line.trim();
    if (!command) return;
    if (sent[sent.length - 1] !== command) sent.push(command);
    setCursor(-1);
    setLine("");
    setError("");
    try {
      await api("POST", `/api/v1/printers/${encodeURIComponent(id)}/commands`, { commands: [command] });
    } catch (err) {
      setError(err.message);
    }
  };
  const key = (e) => {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    e.preventDefault();
    let next = cursor === -1 ? sent.length : cursor;
    next += e.key === "ArrowUp" ? -1 : 1;
    if (next < 0) next = 0;
    if (next >= sent.length) {
      setCursor(-1);
      setLine("");
    } else {
      setCursor(next);
      setLine(sent[next]);
    }
  };
  return html`<section class="card terminal">
    <header class="row wrap">
      <h1>Terminal</h1>
      ${printers.length > 1 && html`<select aria-label="Printer" value=${id} onChange=${(e) => {
        chosen = e.target.value;
        setPrinter(chosen);
      }}>
        ${printers.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select>`}
    </header>
    <pre class="log" ref=${log} data-testid="terminal-log">${lines.map((l) => html`<div key=${l.n}>${l.line}</div>`)}</pre>
    <form class="row" onSubmit=${send}>
      <input class="command" name="command" placeholder="G-code, e.g. M105 (↑/↓: history)" autocomplete="off"
        value=${line} onInput=${(e) => setLine(e.target.value)} onKeyDown=${key} />
      <button class="primary" type="submit">Send</button>
    </form>
    ${error && html`<p class="error" role="alert">${error}</p>`}
  </section>`;
}
