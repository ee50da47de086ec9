// The web interface in a real browser against a real server: first-run setup, the terminal,
// upload → slice with a chosen profile → print to 100 % → history, pause/resume/cancel on a
// print whose moves take time, a failed slice shown with its reason, and screenshots of every
// page at desktop and phone sizes. Waits are on conditions (selectors, text), never fixed sleeps.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { startServer, startBrowser, screenshotPath } from "./harness.mjs";
import { boxObj, boxStl, slowGcode } from "./models.mjs";

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const PASSWORD = "correct horse battery";

let server, browser, page;
const pageErrors = [];

before(async () => {
  server = await startServer();
  browser = await startBrowser();
  const context = await browser.newContext({ viewport: DESKTOP });
  context.setDefaultTimeout(30000);
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("dialog", (d) => d.accept());
});

after(async () => {
  await browser?.close();
  if (process.exitCode && server) console.error(server.log());
  await server?.stop();
});

// A test that failed half-way must not leave a dialog over the next one.
beforeEach(async () => {
  if (page && (await page.getByRole("dialog").count()) > 0) await page.keyboard.press("Escape");
});

const nav = (name) => page.getByRole("navigation").getByRole("link", { name, exact: true }).click();
const card = (printer) => page.locator(`[data-printer="${printer}"]`);
const fileRow = (name) => page.locator(`tr[data-file="${name}"]`);

async function upload(name, content) {
  await nav("Files");
  await page.getByTestId("file-input").setInputFiles({ name, mimeType: "application/octet-stream", buffer: Buffer.from(content) });
  await fileRow(name).waitFor();
}

test("first-run setup creates the administrator and shows both printers", async () => {
  await page.goto(server.url + "/");
  assert.match(page.url(), /\/login$/, "an unknown visitor is sent to the login page");
  await page.getByRole("button", { name: "Create administrator" }).waitFor();
  await page.screenshot({ path: screenshotPath("setup-desktop") });
  await page.getByLabel("Name").fill("admin");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create administrator" }).click();
  await card("fast").getByTestId("state").filter({ hasText: "operational" }).waitFor();
  await card("slow").getByTestId("state").filter({ hasText: "operational" }).waitFor();
  // Temperatures arrive over the WebSocket.
  await card("fast").getByTestId("tool").filter({ hasText: "°C" }).waitFor();
});

test("signing out and in again", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  await page.getByLabel("Name").fill("admin");
  await page.getByLabel("Password").fill("wrong password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: /invalid|wrong|incorrect/i }).waitFor();
  await page.screenshot({ path: screenshotPath("login-desktop") });
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await card("fast").waitFor();
});

test("the terminal sends G-code, shows the reply and recalls history", async () => {
  await nav("Terminal");
  // Printers are listed in the server's order whichever update the page got first.
  assert.equal(await page.getByLabel("Printer").inputValue(), "fast", "the first configured printer is shown first");
  const input = page.getByPlaceholder(/G-code/);
  await input.fill("M105");
  await input.press("Enter");
  await page.getByTestId("terminal-log").filter({ hasText: "> M105" }).waitFor();
  await page.getByTestId("terminal-log").filter({ hasText: /ok T:\d/ }).waitFor();
  await input.press("ArrowUp");
  assert.equal(await input.inputValue(), "M105");
  await input.fill("M104 S999 ; x");
  await input.press("Enter");
  await page.getByRole("alert").filter({ hasText: /;/ }).waitFor();
});

test("preheat, jog and home from the dashboard", async () => {
  await nav("Dashboard");
  const fast = card("fast");
  await fast.getByText("Temperatures, jog and home").click();
  await fast.getByRole("button", { name: /^PLA/ }).click();
  await fast.getByTestId("tool").filter({ hasText: "/ 200 °C" }).waitFor();
  await fast.getByTestId("bed").filter({ hasText: "/ 60 °C" }).waitFor();
  await fast.getByRole("button", { name: "Off" }).click();
  await fast.getByTestId("tool").filter({ hasText: "/ 0 °C" }).waitFor();
  await fast.getByRole("radio", { name: "1", exact: true }).check();
  await fast.getByRole("button", { name: "Y plus" }).click();
  await fast.getByRole("button", { name: "Home all" }).click();
  await nav("Terminal");
  await page.getByLabel("Printer").selectOption("fast");
  const log = page.getByTestId("terminal-log");
  await log.filter({ hasText: "> G1 Y1.00 F3000" }).waitFor();
  await log.filter({ hasText: "> G28" }).waitFor();
  // A page opened afterwards gets the recent lines from the server, as OctoPrint's terminal does.
  await page.reload();
  await page.getByLabel("Printer").selectOption("fast");
  await log.filter({ hasText: "> G1 Y1.00 F3000" }).filter({ hasText: "> G28" }).waitFor();
});

test("an STL is uploaded, sliced with a chosen profile, printed to 100 % and lands in history", async () => {
  await upload("cube.stl", boxStl(10, 10, 4));
  await fileRow("cube.stl").getByRole("button", { name: "Slice…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Printer profile").selectOption("creality_ender3");
  const quality = dialog.getByLabel("Quality");
  await quality.locator("option").nth(1).waitFor({ state: "attached" });
  await quality.selectOption({ index: 1 });
  await dialog.getByLabel("Infill %").fill("15");
  await dialog.getByLabel("Support").selectOption("none");
  await dialog.getByLabel("Adhesion").selectOption("skirt");
  await dialog.getByLabel("Nozzle °C").fill("205");
  await dialog.getByLabel("Print on").selectOption("fast");
  await page.screenshot({ path: screenshotPath("slice-desktop") });
  // Stand in for the browser's Notification API (a headless browser shows none) and a hidden tab,
  // so the page's decision to notify is what is checked.
  await page.evaluate(() => {
    window.shownNotifications = [];
    window.Notification = Object.assign(function (title, options) {
      window.shownNotifications.push(`${title}: ${options.body}`);
    }, { permission: "granted" });
    Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  });
  await dialog.getByRole("button", { name: "Slice and print" }).click();
  await dialog.getByText("Sliced: the print is queued.").waitFor({ timeout: 90000 });
  await dialog.getByRole("button", { name: "Close", exact: true }).click();
  await nav("Dashboard");
  // The highest progress the dashboard shows while the print runs.
  await page.evaluate(() => {
    window.maxProgress = 0;
    const look = () => {
      const bar = document.querySelector('[data-printer="fast"] [data-testid=job] [role=progressbar]');
      if (bar) window.maxProgress = Math.max(window.maxProgress, Number(bar.getAttribute("aria-valuenow")));
      requestAnimationFrame(look);
    };
    look();
  });
  await page.getByRole("status").filter({ hasText: "Print finished — cube.stl" }).waitFor({ timeout: 120000 });
  await page.waitForFunction(() => window.shownNotifications.includes("easyprint: Print finished: cube.stl"));
  await page.evaluate(() => delete document.visibilityState);
  await card("fast").getByTestId("last-job").filter({ hasText: "cube.stl" }).filter({ hasText: "completed" }).waitFor();
  const max = await page.evaluate(() => window.maxProgress);
  assert.ok(max > 0, `the dashboard showed the print's progress while it ran (max ${max} %)`);
  await nav("Queue");
  await page.locator('table.history tr[data-result="completed"]').filter({ hasText: "cube" }).filter({ hasText: "print" }).waitFor();
});

test("slicing only stores a printable G-code file with its analysis", async () => {
  await upload("pin.stl", boxStl(4, 4, 2));
  await fileRow("pin.stl").getByRole("button", { name: "Slice…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel("Infill %").fill("40");
  await dialog.getByRole("button", { name: "Slice only" }).click();
  await dialog.getByText("Sliced: the G-code is now in your files.").waitFor({ timeout: 90000 });
  await dialog.getByRole("button", { name: "Close", exact: true }).click();
  await fileRow("pin.gcode").locator(".analysis").filter({ hasText: "layers" }).waitFor();
  await fileRow("pin.gcode").getByRole("button", { name: "Print" }).waitFor();
});

test("a slow print is paused and resumed from the dashboard", async () => {
  await upload("slow.gcode", slowGcode(600));
  await fileRow("slow.gcode").locator(".analysis").filter({ hasText: /\d+ min .* m · 1 layers/ }).waitFor();
  await page.getByLabel("Print on").selectOption("slow");
  await fileRow("slow.gcode").getByRole("button", { name: "Print" }).click();
  await nav("Dashboard");
  const job = card("slow").getByTestId("job");
  await job.filter({ hasText: "slow.gcode" }).waitFor();
  await job.getByRole("button", { name: "Pause" }).click();
  await card("slow").getByTestId("state").filter({ hasText: "paused" }).waitFor();
  await job.getByRole("button", { name: "Resume" }).click();
  await card("slow").getByTestId("state").filter({ hasText: "printing" }).waitFor();
  await job.getByRole("button", { name: "Pause" }).waitFor();
  await page.screenshot({ path: screenshotPath("dashboard-desktop") });
});

test("waiting jobs are reordered, scheduled for later and cancelled in the queue", async () => {
  // The slow printer is busy, so prints sent to it wait in the queue.
  await upload("first.gcode", slowGcode(4));
  await upload("second.gcode", slowGcode(4));
  await page.getByLabel("Print on").selectOption("slow");
  await fileRow("first.gcode").getByRole("button", { name: "Print" }).click();
  await fileRow("second.gcode").getByRole("button", { name: "Print" }).click();
  await nav("Queue");
  const waiting = page.locator('ol.queue li[data-state="ready"]');
  const order = async () => (await waiting.locator("strong").allInnerTexts()).join(",");
  await waiting.nth(1).waitFor();
  assert.equal(await order(), "first.gcode,second.gcode");
  await waiting.filter({ hasText: "second.gcode" }).getByRole("button", { name: "Top" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('ol.queue li[data-state="ready"] strong')]
    .map((e) => e.textContent).join(",") === "second.gcode,first.gcode");
  const first = waiting.filter({ hasText: "first.gcode" });
  await first.getByRole("button", { name: "Schedule…" }).click();
  await page.getByLabel(/not before/).fill("2099-01-02T03:04");
  await page.getByRole("button", { name: "Schedule", exact: true }).click();
  await first.getByTestId("not-before").filter({ hasText: "2099" }).waitFor();
  await page.screenshot({ path: screenshotPath("queue-desktop") });
  for (const name of ["first.gcode", "second.gcode"]) {
    await waiting.filter({ hasText: name }).getByRole("button", { name: "Cancel" }).click();
    await waiting.filter({ hasText: name }).waitFor({ state: "detached" });
  }
});

test("a job whose printer was removed shows why and moves to another printer", async () => {
  await upload("orphan.gcode", slowGcode(2));
  // A printer that never connects holds the job; then an administrator removes the printer.
  await page.evaluate(async (name) => {
    const csrf = decodeURIComponent(document.cookie.split("; ").find((c) => c.startsWith("csrf_token=")).slice("csrf_token=".length));
    const call = async (method, path, body) => {
      const r = await fetch(path, { method, headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
      return r.status === 204 ? null : r.json();
    };
    await call("POST", "/api/v1/printers", { id: "doomed", port: "virtual", autoconnect: false });
    const file = (await call("GET", "/api/v1/files")).find((f) => f.name === name);
    await call("POST", "/api/v1/jobs", { file_id: file.id, printer: "doomed" });
    await call("DELETE", "/api/v1/printers/doomed");
  }, "orphan.gcode");
  await nav("Queue");
  const job = page.locator("ol.queue li").filter({ hasText: "orphan.gcode" });
  await job.getByTestId("blocked").filter({ hasText: "printer removed" }).waitFor();
  await page.screenshot({ path: screenshotPath("queue-blocked") });
  await job.getByLabel("Print on").selectOption("fast");
  await job.getByRole("button", { name: "Move", exact: true }).click();
  // On the fast printer it prints and leaves the queue.
  await job.waitFor({ state: "detached", timeout: 60000 });
});

test("a print is cancelled from the dashboard", async () => {
  await nav("Dashboard");
  const job = card("slow").getByTestId("job");
  await job.getByRole("button", { name: "Cancel" }).click();
  await card("slow").getByTestId("state").filter({ hasText: "operational" }).waitFor();
  await job.waitFor({ state: "detached" });
  await card("slow").getByTestId("last-job").filter({ hasText: "cancelled" }).waitFor();
  await nav("Queue");
  await page.locator('table.history tr[data-result="cancelled"]').filter({ hasText: "slow.gcode" }).waitFor();
});

test("the last print's result stays on the dashboard after a reload and a server restart", async () => {
  const lastCancelled = () => card("slow").getByTestId("last-job").filter({ hasText: "slow.gcode" }).filter({ hasText: "cancelled" });
  await page.goto(server.url + "/#/dashboard");
  await page.reload();
  await lastCancelled().waitFor();
  await server.restart();
  await page.goto(server.url + "/#/dashboard");
  await lastCancelled().waitFor();
  assert.match(await lastCancelled().textContent(), /ended .+ after /);
  // The printers reconnect, so the tests after this one find them ready.
  await card("fast").getByTestId("state").filter({ hasText: "operational" }).waitFor();
  await card("slow").getByTestId("state").filter({ hasText: "operational" }).waitFor();
});

test("a model too large for the printer shows why slicing failed", async () => {
  await upload("huge.stl", boxStl(400, 400, 10));
  await fileRow("huge.stl").getByRole("button", { name: "Print" }).click();
  await page.getByRole("alert").filter({ hasText: /Slicing failed — huge\.stl: .*too large/ }).waitFor({ timeout: 90000 });
  await nav("Queue");
  await page.locator('table.history tr[data-result="failed"]').filter({ hasText: "huge.stl" }).filter({ hasText: "too large" }).waitFor();
  await page.screenshot({ path: screenshotPath("slice-failed-desktop") });
});

test("several files dropped at once upload with their own progress, and an OBJ previews in 3D", async () => {
  await nav("Files");
  const files = [["drop-a.obj", boxObj(8, 6, 5)], ["drop-b.stl", boxStl(3, 3, 3)]];
  const transfer = await page.evaluateHandle((list) => {
    const t = new DataTransfer();
    for (const [name, text] of list) t.items.add(new File([text], name));
    return t;
  }, files);
  await page.locator("label.drop").dispatchEvent("drop", { dataTransfer: transfer });
  for (const [name] of files) {
    await page.getByTestId("upload").filter({ hasText: name }).filter({ hasText: "uploaded" }).waitFor();
    await fileRow(name).waitFor();
  }
  await fileRow("drop-a.obj").getByRole("button", { name: "Preview" }).click();
  await page.getByTestId("preview-info").filter({ hasText: "8.0 × 6.0 × 5.0 mm" }).waitFor();
  await page.getByRole("button", { name: "Close dialog" }).click();
});

test("a G-code file previews layer by layer with a slider", async () => {
  await nav("Files");
  await fileRow("cube.gcode").getByRole("button", { name: "Preview" }).click();
  const info = page.getByTestId("preview-info");
  await info.filter({ hasText: /^layer 1 of (\d+) · z 0\.\d+ mm · [1-9]\d* extrusions/ }).waitFor();
  const total = (await info.innerText()).match(/of (\d+)/)[1];
  assert.ok(Number(total) > 10, `a 4 mm cube has more than 10 layers (${total})`);
  await page.getByRole("slider", { name: "layer" }).press("End");
  await info.filter({ hasText: `layer ${total} of ${total}` }).waitFor();
  await page.screenshot({ path: screenshotPath("gcode-preview-desktop") });
  await page.getByRole("button", { name: "Close dialog" }).click();
});

test("settings: an API key is created and works, a user is added", async () => {
  await nav("Settings");
  const keys = page.locator("section", { has: page.getByRole("heading", { name: "API keys" }) });
  await keys.getByLabel("Label").fill("PrusaSlicer");
  await keys.getByLabel("Your password").fill(PASSWORD);
  await keys.getByRole("button", { name: "Create key" }).click();
  const key = await keys.getByTestId("new-key").innerText();
  await keys.getByText("PrusaSlicer").waitFor();
  const version = await fetch(`${server.url}/api/version`, { headers: { "X-Api-Key": key } });
  assert.equal(version.status, 200, "the key shown once is a working OctoPrint key");
  const users = page.locator("section", { has: page.getByRole("heading", { name: "Users" }) });
  await users.getByLabel("Name").fill("carol");
  await users.getByLabel("Password").fill("another long password");
  await users.getByRole("button", { name: "Add user" }).click();
  await users.locator("li").filter({ hasText: "carol" }).waitFor();
});

test("an administrator adds, renames and removes a printer in settings", async () => {
  await nav("Settings");
  const printers = page.locator("section", { has: page.getByRole("heading", { name: "Printers" }) });
  await printers.getByRole("button", { name: "Add printer" }).click();
  await printers.getByLabel(/^Id/).fill("extra");
  await printers.getByLabel("Name").fill("Extra printer");
  await printers.getByLabel(/^Port/).fill("/etc/passwd");
  await printers.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").filter({ hasText: "port:" }).waitFor();
  await printers.getByLabel(/^Port/).fill("virtual");
  await printers.getByRole("button", { name: "Save" }).click();
  await printers.locator("li").filter({ hasText: "Extra printer" }).waitFor();
  await nav("Dashboard");
  await card("extra").getByTestId("state").filter({ hasText: "operational" }).waitFor();
  await nav("Settings");
  await printers.locator("li").filter({ hasText: "Extra printer" }).getByRole("button", { name: "Edit" }).click();
  await printers.getByLabel("Name").fill("Renamed printer");
  await printers.getByRole("button", { name: "Save" }).click();
  await printers.locator("li").filter({ hasText: "Renamed printer" }).waitFor();
  await printers.locator("li").filter({ hasText: "Renamed printer" }).getByRole("button", { name: "Remove" }).click();
  await printers.locator("li").filter({ hasText: "Renamed printer" }).waitFor({ state: "detached" });
  await nav("Dashboard");
  await card("fast").waitFor();
  // The removal reaches every open page on the printer_status topic.
  await card("extra").waitFor({ state: "detached" });
});

test("a slicer's OctoPrint app-key request is approved at /appkeys", async () => {
  const request = await fetch(`${server.url}/plugin/appkeys/request`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ app: "Cura" }),
  });
  assert.equal(request.status, 201);
  const { app_token: token } = await request.json();
  const poll = () => fetch(`${server.url}/plugin/appkeys/request/${token}`);
  assert.equal((await poll()).status, 202, "pending until a person decides");
  await page.goto(`${server.url}/appkeys`);
  const section = page.locator("#appkeys");
  await section.locator("li").filter({ hasText: "Cura" }).getByRole("button", { name: "Approve" }).click();
  await section.getByText("No pending requests.").waitFor();
  const granted = await poll();
  assert.equal(granted.status, 200);
  const { api_key: key } = await granted.json();
  const version = await fetch(`${server.url}/api/version`, { headers: { "X-Api-Key": key } });
  assert.equal(version.status, 200);
});

test("every page at desktop and phone size", async () => {
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(viewport);
    for (const name of ["Dashboard", "Files", "Queue", "Terminal", "Settings"]) {
      await nav(name);
      await page.locator("main h1, main h2").first().waitFor();
      const file = size === "desktop" && ["Dashboard", "Queue"].includes(name) ? `${name.toLowerCase()}-idle-${size}` : `${name.toLowerCase()}-${size}`;
      await page.screenshot({ path: screenshotPath(file), fullPage: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
      assert.ok(overflow <= 1, `${name} at ${size} size scrolls sideways by ${overflow} px`);
    }
    await nav("Files");
    await fileRow("cube.stl").getByRole("button", { name: "Preview" }).click();
    await page.getByTestId("preview-info").filter({ hasText: "× 4.0 mm" }).waitFor();
    await page.screenshot({ path: screenshotPath(`preview-${size}`) });
    await page.getByRole("button", { name: "Close dialog" }).click();
  }
  assert.deepEqual(pageErrors, [], "no JavaScript errors");
});
