// Login and first-run setup. Messages are set with textContent only (never as HTML).
"use strict";
const $ = (id) => document.getElementById(id);
let setup = false;

async function init() {
  const response = await fetch("/api/v1/setup");
  setup = response.ok && (await response.json()).needed === true;
  if (setup) {
    $("intro").textContent = "Welcome! Create the administrator account (password: at least 8 characters).";
    $("submit").textContent = "Create administrator";
    $("password").autocomplete = "new-password";
  }
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").textContent = "";
  const response = await fetch(setup ? "/api/v1/setup" : "/api/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("name").value, password: $("password").value }),
  });
  if (response.ok) {
    window.location.assign("/");
  } else {
    const body = await response.json().catch(() => ({ error: response.statusText }));
    $("error").textContent = body.error || "sign-in failed";
  }
});

init();
