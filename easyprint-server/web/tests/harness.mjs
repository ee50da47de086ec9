// Starts a real easyprint server (the debug binary cargo built) on a free loopback port with a
// fresh data directory and simulated printers, and a headless Chromium driven by playwright-core.
// Everything started here is stopped by `stop()`, and by the process exit hook if a test throws.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, "target");
export const binary = process.env.EASYPRINT_BIN || join(targetDir, "debug", "easyprint");
export const screenshotDir = process.env.UI_SCREENSHOTS || join(repo, "target", "ui-screenshots");
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

const children = new Set();
const dataDirs = new Set();
const killChildren = () => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
};
process.on("exit", killChildren);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    killChildren();
    process.exit(128 + constants.signals[signal]);
  });
}

/** The printers every UI test has: one whose moves take no time, one whose moves take real time.
 * The fast one still has a real Ender 3's 115200-baud link, so a small print lasts a few seconds
 * and its progress can be watched. */
const PRINTERS = `
[[printers]]
id = "fast"
name = "Fast simulator"
port = "virtual"
autoconnect = true
[printers.simulation]
instant_moves = true
heating_rate = 10000.0
homing_secs = 0.0
link_baud = 115200

[[printers]]
id = "slow"
name = "Slow simulator"
port = "virtual"
autoconnect = true
[printers.simulation]
instant_moves = false
heating_rate = 10000.0
homing_secs = 0.0
link_baud = 2000000
`;

/** Runs `easyprint serve` on 127.0.0.1:0 and resolves once it printed its address. `restart()`
 * stops it and serves the same data directory again (on a new port: `url` follows). */
export async function startServer() {
  if (!existsSync(binary)) throw new Error(`${binary} does not exist: run cargo build -p easyprint-server first`);
  const dir = mkdtempSync(join(tmpdir(), "easyprint-ui-"));
  dataDirs.add(dir);
  const config = join(dir, "easyprint.toml");
  writeFileSync(config, `listen = "127.0.0.1:0"\ndata_dir = ${JSON.stringify(join(dir, "data"))}\n${PRINTERS}`);
  let child;
  let log = "";
  const launch = async () => {
    child = spawn(binary, ["serve", "--config", config], {
      env: { ...process.env, NO_COLOR: "1", EASYPRINT_LOG: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    const started = log.length;
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`server did not start within 30 s:\n${log}`)), 30000);
      const read = (chunk) => {
        log += chunk;
        // Strip colour codes in case the subscriber ignores NO_COLOR.
        const m = log.slice(started).replace(/\x1b\[[0-9;]*m/g, "").match(/easyprint listening address=(\S+)/);
        if (m) {
          clearTimeout(timer);
          ok(`http://${m[1]}`);
        }
      };
      child.stdout.on("data", read);
      child.stderr.on("data", read);
      child.on("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`server exited with ${code}:\n${log}`));
      });
    });
  };
  const terminate = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(timer);
    }
    children.delete(child);
  };
  const server = {
    url: await launch(),
    dir,
    log: () => log,
    async restart() {
      await terminate();
      server.url = await launch();
    },
    async stop() {
      await terminate();
      rmSync(dir, { recursive: true, force: true });
      dataDirs.delete(dir);
    },
  };
  return server;
}

/** Headless Debian Chromium. */
export async function startBrowser() {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: run scripts/install-deps`);
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      "--disable-background-networking", "--disable-component-update", "--no-first-run", "--use-angle=swiftshader",
      "--enable-unsafe-swiftshader"],
  });
}

export function screenshotPath(name) {
  mkdirSync(screenshotDir, { recursive: true });
  return join(screenshotDir, `${name}.png`);
}
