// Writes the HTML page template for `dvc plots show --html-template FILE` (default:
// offline.html next to this script) with Vega, Vega-Lite and vega-embed inlined from
// node_modules (`npm ci`, pinned by package-lock.json). DVC's own page loads them from a
// CDN, so offline it is blank.
//
// How dvc_render 1.x fills the page (dvc_render/html.py): plain str.replace of
// "{scripts}", "{plot_divs}" and "{refresh_tag}", no str.format, so the bundles' braces
// are safe. The page leaves out "{scripts}": that is where DVC would put its CDN <script>
// tags. Each plot div runs vegaEmbed() inline as it is parsed, so the bundles go in <head>.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = process.argv[2] ?? here("offline.html");

// Strings that must not occur in an inlined bundle: the first two would end or change
// the <script> element; the placeholders would be replaced by DVC inside the code.
const FORBIDDEN = [/<\/script/i, /<!--/, /\{(scripts|plot_divs|refresh_tag)\}/];

const bundles = ["vega", "vega-lite", "vega-embed"].map((name) => {
  const { version } = JSON.parse(readFileSync(here(`node_modules/${name}/package.json`)));
  const code = readFileSync(here(`node_modules/${name}/build/${name}.min.js`), "utf8")
    // The .map file is not shipped next to the page: no reference to it.
    .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
  for (const pattern of FORBIDDEN) {
    if (pattern.test(code)) throw new Error(`${name} ${version} contains ${pattern}: cannot inline`);
  }
  return { name, version, code };
});

const page = `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>gradlab plots</title>
<!-- inlined by tools/vega/build.mjs, no network needed: ${bundles
  .map((b) => `${b.name} ${b.version}`)
  .join(", ")} -->
${bundles.map((b) => `<script>${b.code}</script>`).join("\n")}
<style>
  body { font-family: sans-serif; margin: 16px; }
  body > div { margin-bottom: 32px; }
</style>
</head>
<body>
{plot_divs}
</body>
</html>
`;

writeFileSync(out, page);
console.log(`${out}: ${bundles.map((b) => `${b.name} ${b.version}`).join(", ")}`);
