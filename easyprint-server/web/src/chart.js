// The temperature chart: actual (solid) and target (dashed) of hotend and bed over the last
// minutes, drawn on a canvas (no chart library needed for four lines).
import { useEffect, useRef } from "preact/hooks";
import { html } from "./ui.js";

const SERIES = [
  ["tool", "#e4572e", false],
  ["toolTarget", "#e4572e", true],
  ["bed", "#2e86de", false],
  ["bedTarget", "#2e86de", true],
];

export function TemperatureChart({ points }) {
  const canvas = useRef(null);
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    const ratio = window.devicePixelRatio || 1;
    const width = c.clientWidth, height = c.clientHeight;
    c.width = width * ratio;
    c.height = height * ratio;
    const g = c.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    const now = points.length ? points[points.length - 1].t : 0;
    // Up to the last five minutes, at least one: a fresh page shows what it has, not a blank.
    const span = points.length ? Math.min(300, Math.max(60, now - points[0].t)) : 300;
    let max = 50;
    for (const p of points) for (const [k] of SERIES) if (p[k] > max) max = p[k];
    max = Math.ceil(max / 50) * 50;
    const left = 30, bottom = height - 14;
    const x = (t) => left + ((t - (now - span)) / span) * (width - left - 4);
    const y = (v) => bottom - (v / max) * (bottom - 6);
    g.font = "10px system-ui, sans-serif";
    g.fillStyle = "#888";
    g.strokeStyle = "#8883";
    g.lineWidth = 1;
    for (let v = 0; v <= max; v += 50) {
      g.beginPath();
      g.moveTo(left, y(v));
      g.lineTo(width, y(v));
      g.stroke();
      g.fillText(String(v), 2, y(v) + 3);
    }
    g.fillText(span >= 120 ? `−${Math.round(span / 60)} min` : `−${Math.round(span)} s`, left, height - 2);
    g.fillText("now", width - 24, height - 2);
    for (const [key, color, dashed] of SERIES) {
      g.strokeStyle = color;
      g.lineWidth = dashed ? 1 : 2;
      g.setLineDash(dashed ? [4, 3] : []);
      g.beginPath();
      let started = false;
      for (const p of points) {
        if (p[key] == null || p.t < now - span) continue;
        if (started) g.lineTo(x(p.t), y(p[key]));
        else g.moveTo(x(p.t), y(p[key]));
        started = true;
      }
      g.stroke();
    }
    g.setLineDash([]);
  });
  return html`<canvas class="chart" ref=${canvas} aria-label="temperature chart"></canvas>`;
}
