// The web interface in a real browser against a real server: first-run setup, the terminal,
// upload → slice with a chosen profile → print to 100 % → history, pause/resume/cancel on a
// print whose moves take time, a failed slice shown with its reason, and screenshots of every
// page at desktop and phone sizes. Waits are on conditions (selectors, text), never fixed sleeps.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, startBrowser, screenshotPath } from "./harness.mjs";
import { boxStl, slowGcode } from "./models.mjs";

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

test("an STL is uploaded, sliced, printed to 100 % and lands in history", async () => {
  await upload("cube.stl", boxStl(10, 10, 4));
  await page.getByLabel("Print on").selectOption("fast");
  await fileRow("cube.stl").getByRole("button", { name: "Print" }).click();
  await nav("Dashboard");
  // Record the highest progress the dashboard shows for this print.
  await page.evaluate(() => {
    window.maxProgress = 0;
    const look = () => {
      const bar = document.querySelector('[data-printer="fast"] [role=progressbar]');
      if (bar) window.maxProgress = Math.max(window.maxProgress, Number(bar.getAttribute("aria-valuenow")));
      requestAnimationFrame(look);
    };
    look();
  });
  await page.getByRole("status").filter({ hasText: "Print finished — cube.stl" }).waitFor({ timeout: 120000 });
  const max = await page.evaluate(() => window.maxProgress);
  console.log(`highest progress shown: ${max} %`);
  assert.ok(max > 0, `the dashboard showed the print's progress (max ${max} %)`);
  await nav("Queue");
  await page.locator('table.history tr[data-result="completed"]').filter({ hasText: "cube" }).filter({ hasText: "print" }).waitFor();
  await nav("Files");
  // The sliced G-code is a file of its own, with its analysis.
  await fileRow("cube.gcode").locator(".analysis").filter({ hasText: "layers" }).waitFor();
});

test("a slow print is paused, resumed and cancelled from the dashboard", async () => {
  await upload("slow.gcode", slowGcode(600));
  assert.match(await fileRow("slow.gcode").locator(".analysis").innerText(), /layers/);
  await page.getByLabel("Print on").selectOption("slow");
  await fileRow("slow.gcode").getByRole("button", { name: "Print" }).click();
  await nav("Dashboard");
  const job = card("slow").getByTestId("job");
  await job.filter({ hasText: "slow.gcode" }).waitFor();
  await job.getByRole("button", { name: "Pause" }).click();
  await card("slow").getByTestId("state").filter({ hasText: "paused" }).waitFor();
  await job.getByRole("button", { name: "Resume" }).click();
  await card("slow").getByTestId("state").filter({ hasText: "printing" }).waitFor();
  await page.screenshot({ path: screenshotPath("dashboard-desktop") });
  await job.getByRole("button", { name: "Cancel" }).click();
  await card("slow").getByTestId("state").filter({ hasText: "operational" }).waitFor();
  await job.waitFor({ state: "detached" });
  await nav("Queue");
  await page.locator('table.history tr[data-result="cancelled"]').filter({ hasText: "slow.gcode" }).waitFor();
});

test("a model too large for the printer shows why slicing failed", async () => {
  await upload("huge.stl", boxStl(400, 400, 10));
  await fileRow("huge.stl").getByRole("button", { name: "Print" }).click();
  await page.getByRole("alert").filter({ hasText: /Slicing failed: .*too large/ }).waitFor({ timeout: 90000 });
  await nav("Queue");
  await page.locator('table.history tr[data-result="failed"]').filter({ hasText: "huge.stl" }).filter({ hasText: "too large" }).waitFor();
  await page.screenshot({ path: screenshotPath("slice-failed-desktop") });
});

test("every page at desktop and phone size", async () => {
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(viewport);
    for (const name of ["Dashboard", "Files", "Queue", "Terminal", "Settings"]) {
      await nav(name);
      await page.locator("main h1, main h2").first().waitFor();
      await page.screenshot({ path: screenshotPath(`${name.toLowerCase()}-${size}`), fullPage: true });
    }
    await nav("Files");
    await fileRow("cube.stl").getByRole("button", { name: "Preview" }).click();
    await page.getByTestId("preview-info").filter({ hasText: "× 4.0 mm" }).waitFor();
    await page.screenshot({ path: screenshotPath(`preview-${size}`) });
    await page.getByRole("button", { name: "close" }).click();
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > innerWidth + 1);
  assert.equal(overflow, false, "no horizontal scrolling on a phone");
  assert.deepEqual(pageErrors, [], "no JavaScript errors");
});
