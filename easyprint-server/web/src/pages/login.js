// Login, or the first administrator's account when the server has none yet.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { html } from "../ui.js";

export function Login({ onDone }) {
  const [setup, setSetup] = useState(null);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api("GET", "/api/v1/setup").then((s) => setSetup(s.needed === true), () => setSetup(false));
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    setError("");
    setBusy(true);
    try {
      const user = await api("POST", setup ? "/api/v1/setup" : "/api/v1/login", { name, password });
      onDone(user);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  if (setup === null) return html`<p class="loading">Loading…</p>`;
  return html`<main class="login card">
    <h1>easyprint</h1>
    <p>${setup
      ? "Welcome! Create the administrator account (password: at least 8 characters)."
      : "Sign in to your printers."}</p>
    <form onSubmit=${submit}>
      <label>Name<input name="name" autocomplete="username" required value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label>Password<input name="password" type="password" required
        autocomplete=${setup ? "new-password" : "current-password"}
        value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
      <button type="submit" class="primary" disabled=${busy}>${setup ? "Create administrator" : "Sign in"}</button>
      <p class="error" role="alert">${error}</p>
    </form>
  </main>`;
}
