// Copies Vega's minified build from node_modules (`npm ci`, pinned by package-lock.json)
// into the explorer stage's package, with its provenance beside it:
//   pipeline/explorer/vega.js    the bundle the page inlines (no source-map reference)
//   pipeline/explorer/vega.json  package, version, the lockfile's integrity, sha256 of vega.js
// The bundle is committed so a fresh clone builds reports/explorer.html without npm;
// tests/explorer/test_vega.py checks it against the lockfile and node_modules.
// Usage: npm ci --prefix tools/vega --ignore-scripts && node tools/vega/vendor.mjs
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const FILE = "build/vega.min.js";
// would end or change the inline <script> element the page puts the bundle in
const FORBIDDEN = [/<\/script/i, /<!--/];

const lock = JSON.parse(readFileSync(here("package-lock.json")));
const pinned = lock.packages["node_modules/vega"];
const { version } = JSON.parse(readFileSync(here("node_modules/vega/package.json")));
if (version !== pinned.version) {
  throw new Error(`node_modules has vega ${version}, the lockfile ${pinned.version}: npm ci`);
}
const code = readFileSync(here(`node_modules/vega/${FILE}`), "utf8").replace(
  /\n\/\/# sourceMappingURL=\S+\s*$/,
  "\n",
);
for (const pattern of FORBIDDEN) {
  if (pattern.test(code)) throw new Error(`vega ${version} contains ${pattern}: cannot inline`);
}
const sha256 = createHash("sha256").update(code).digest("hex");
const provenance = { package: "vega", version, file: FILE, integrity: pinned.integrity, sha256 };
writeFileSync(here("../../pipeline/explorer/vega.js"), code);
writeFileSync(here("../../pipeline/explorer/vega.json"), JSON.stringify(provenance, null, 1) + "\n");
console.log(`pipeline/explorer/vega.js: vega ${version}, sha256 ${sha256}`);
