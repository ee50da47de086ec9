// Builds the web interface into dist/: esbuild bundles src/main.js (three.js is split into a chunk
// loaded only when a preview opens) and src/style.css under content-hashed names, writes
// index.html pointing at them, and a .gz twin of every text file that gzip makes smaller.
// build.rs embeds dist/ into the easyprint binary. Run from anywhere: `node build.mjs`.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, constants } from "node:zlib";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: "src/main.js", style: "src/style.css" },
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: ["es2020"],
  outdir: "dist/assets",
  entryNames: "[name]-[hash]",
  chunkNames: "chunk-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const outputs = Object.entries(result.metafile.outputs);
const entry = (name) => {
  const found = outputs.find(([, o]) => o.entryPoint === name);
  if (!found) throw new Error(`esbuild produced no output for ${name}`);
  return "/" + relative(dist, join(root, found[0]));
};
const html = readFileSync(join(root, "src/index.html"), "utf8")
  .replace("%APP_JS%", entry("src/main.js"))
  .replace("%STYLE_CSS%", entry("src/style.css"));
writeFileSync(join(dist, "index.html"), html);

const walk = (dir) => readdirSync(dir).flatMap((f) => {
  const p = join(dir, f);
  return statSync(p).isDirectory() ? walk(p) : [p];
});
let total = 0, totalGz = 0;
for (const file of walk(dist)) {
  if (!/\.(js|css|html|svg|json)$/.test(file)) continue;
  const body = readFileSync(file);
  const gz = gzipSync(body, { level: constants.Z_BEST_COMPRESSION });
  total += body.length;
  if (gz.length < body.length * 0.9) {
    writeFileSync(file + ".gz", gz);
    totalGz += gz.length;
  } else totalGz += body.length;
}
console.log(`web: built ${relative(process.cwd(), dist) || "."} (${(total / 1024).toFixed(0)} KiB, ${(totalGz / 1024).toFixed(0)} KiB gzipped)`);
