// Preview dialog: a 3D view of a model, or a layer-by-layer view of G-code with a slider.
// three.js is loaded only here (a separate chunk), so the rest of the interface stays small.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { html, Dialog } from "../ui.js";

export function PreviewDialog({ file, onClose }) {
  const host = useRef(null);
  const viewer = useRef(null);
  const [error, setError] = useState("");
  const [layers, setLayers] = useState(null);
  const [layer, setLayer] = useState(0);
  const [info, setInfo] = useState("Loading…");

  useEffect(() => {
    let cancelled = false;
    (async () => {
      try {
        const { Viewer } = await import("../viewer.js");
        if (cancelled) return;
        viewer.current = new Viewer(host.current);
        if (file.kind === "gcode") {
          const index = await api("GET", `/api/v1/files/${file.id}/layers`);
          if (cancelled) return;
          if (index.layers.length === 0) throw new Error("this G-code has no layers to show");
          if (index.bounds) viewer.current.frameBounds(index.bounds);
          setLayers(index.layers);
          setLayer(0);
        } else {
          const response = await fetch(`/api/v1/files/${file.id}/download`);
          if (!response.ok) throw new Error(`download failed: ${response.status}`);
          const data = await response.arrayBuffer();
          if (cancelled) return;
          const size = viewer.current.showModel(file.name, data);
          setInfo(`${size.x.toFixed(1)} × ${size.y.toFixed(1)} × ${size.z.toFixed(1)} mm`);
        }
      } catch (e) {
        if (!cancelled) setError(e.message);
      }
    })();
    return () => {
      cancelled = true;
      viewer.current?.dispose();
    };
  }, [file.id]);

  useEffect(() => {
    if (!layers || !viewer.current) return;
    let cancelled = false;
    api("GET", `/api/v1/files/${file.id}/layers/${layers[layer].index}`).then((l) => {
      if (cancelled) return;
      viewer.current.showLayer(l);
      setInfo(`layer ${layer + 1} of ${layers.length} · z ${Number(l.z).toFixed(2)} mm · ${l.extrude.length / 4} extrusions, ${l.travel.length / 4} travel moves${l.truncated ? " (first part only: a very large layer)" : ""}`);
    }, (e) => setError(e.message));
    return () => {
      cancelled = true;
    };
  }, [layers, layer]);

  return html`<${Dialog} title=${`Preview ${file.name}`} onClose=${onClose} wide=${true}>
    <div class="viewer" ref=${host} data-testid="viewer"></div>
    ${error ? html`<p class="error" role="alert">${error}</p>` : html`<p class="muted" data-testid="preview-info">${info}</p>`}
    ${layers && layers.length > 0 && html`<label class="slider">Layer
      <input type="range" min="0" max=${layers.length - 1} value=${layer} aria-label="layer" onInput=${(e) => setLayer(Number(e.target.value))} /></label>`}
  </${Dialog}>`;
}
