// Talking to the server: JSON requests with the CSRF header, uploads with progress, and the
// WebSocket with automatic reconnection. Errors carry the API's own message.

/** An API error: `message` is the server's text, `code` its stable code, `status` the HTTP status. */
export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

function csrfToken() {
  const match = document.cookie.split("; ").find((c) => c.startsWith("csrf_token="));
  return match ? decodeURIComponent(match.slice("csrf_token=".length)) : "";
}

let onUnauthenticated = () => {};
/** Called when a request answers 401 (the session ended). */
export function setUnauthenticatedHandler(f) {
  onUnauthenticated = f;
}

async function errorOf(response) {
  const body = await response.json().catch(() => null);
  return new ApiError(body?.error || `${response.status} ${response.statusText}`, body?.code, response.status);
}

/** `api("POST", "/api/v1/...", body)` → parsed JSON (or null for 204). Throws ApiError. */
export async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(`cannot reach the server (${e.message})`, "network", 0);
  }
  if (response.status === 401 && !path.endsWith("/login") && !path.endsWith("/setup")) onUnauthenticated();
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/** Uploads one file with XMLHttpRequest so the browser reports upload progress (0..1). */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/files");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response);
      const body = xhr.response;
      reject(new ApiError(body?.error || `${xhr.status} ${xhr.statusText}`, body?.code, xhr.status));
    };
    xhr.onerror = () => reject(new ApiError("upload failed: the connection broke", "network", 0));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/**
 * The live connection: `live.on(topic, (key, data) => ...)` returns an unsubscribe function.
 * Reconnects with backoff; after a reconnect the server sends fresh snapshots.
 */
export function connectLive() {
  const listeners = new Map();
  const topics = ["printer_status", "temperatures", "job_progress", "slicing_progress", "terminal", "queue", "notifications"];
  let socket;
  let delay = 500;
  let stopped = false;
  const stateListeners = new Set();
  const setState = (s) => stateListeners.forEach((f) => f(s));
  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/ws`);
    socket.onopen = () => {
      delay = 500;
      socket.send(JSON.stringify({ subscribe: topics }));
      setState("open");
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!message.topic) return;
      for (const f of listeners.get(message.topic) || []) f(message.key, message.data);
    };
    socket.onclose = () => {
      setState("closed");
      if (stopped) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  open();
  return {
    on(topic, f) {
      if (!listeners.has(topic)) listeners.set(topic, new Set());
      listeners.get(topic).add(f);
      return () => listeners.get(topic).delete(f);
    },
    onState(f) {
      stateListeners.add(f);
      return () => stateListeners.delete(f);
    },
    close() {
      stopped = true;
      socket.close();
    },
  };
}
