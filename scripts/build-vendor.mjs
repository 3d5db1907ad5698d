// Bundle the pinned front-end libraries into static/vendor/, which is committed so
// that running the site needs neither npm nor network access.
//
// Usage: npm ci && npm run build:vendor
//
// Outputs:
//   chat-vendor.js   one minified ES module exporting markdownit, DOMPurify, hljs and katex
//   hljs-light.css   highlight.js github.css, unchanged
//   hljs-dark.css    highlight.js github-dark.css, unchanged
//   hljs-theme.css   both themes in one file: dark applies under
//                    `prefers-color-scheme: dark` unless <html data-theme="light">,
//                    and always under <html data-theme="dark">
//   katex/katex.css  KaTeX's stylesheet, its fonts reduced to the woff2 files
//   katex/fonts/     those woff2 files, served by the site itself (no font CDN)
//   LICENSES.txt     name, version and licence text of every package in the bundle
import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outDir = path.join(root, "static", "vendor");
const modulesDir = path.join(root, "node_modules");
const hljsStyles = path.join(modulesDir, "highlight.js", "styles");

// Browsers with native ES modules, CSS nesting lowered away, and optional chaining.
const cssTarget = ["chrome100", "firefox100", "safari15"];

async function bundleScript() {
  const result = await esbuild.build({
    entryPoints: [path.join(root, "scripts", "vendor-entry.mjs")],
    outfile: path.join(outDir, "chat-vendor.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    minify: true,
    legalComments: "eof",
    banner: { js: "/* chatsite vendor bundle, built by scripts/build-vendor.mjs. Licences: LICENSES.txt */" },
    metafile: true,
    logLevel: "warning",
  });
  return Object.keys(result.metafile.inputs);
}

async function buildThemes() {
  const light = await readFile(path.join(hljsStyles, "github.css"), "utf8");
  const dark = await readFile(path.join(hljsStyles, "github-dark.css"), "utf8");
  await writeFile(path.join(outDir, "hljs-light.css"), light);
  await writeFile(path.join(outDir, "hljs-dark.css"), dark);

  // Nesting the dark rules under a root selector gives them a higher specificity than
  // the light rules, so they win wherever both match. esbuild then flattens the nesting.
  const combined = [
    light,
    `@media (prefers-color-scheme: dark) {\n:root:not([data-theme="light"]) {\n${dark}\n}\n}`,
    `:root[data-theme="dark"] {\n${dark}\n}`,
  ].join("\n");
  const result = await esbuild.transform(combined, {
    loader: "css",
    minify: true,
    target: cssTarget,
    legalComments: "eof",
  });
  await writeFile(path.join(outDir, "hljs-theme.css"), result.code);
}

// Every browser that runs the page's ES modules reads woff2, so the woff and ttf
// fallbacks are left out of the stylesheet and of static/vendor/.
async function copyKatex() {
  const source = path.join(modulesDir, "katex", "dist");
  const target = path.join(outDir, "katex");
  await mkdir(path.join(target, "fonts"), { recursive: true });
  const css = await readFile(path.join(source, "katex.min.css"), "utf8");
  const woff2Only = css.replace(
    /src:(url\(fonts\/[\w-]+\.woff2\) format\("woff2"\))(?:,url\([^)]*\) format\("[a-z]+"\))*/g,
    "src:$1",
  );
  if (/\.(?:woff|ttf)\)/.test(woff2Only)) {
    throw new Error("katex.min.css still names woff or ttf fonts; update copyKatex().");
  }
  await writeFile(path.join(target, "katex.css"), woff2Only);
  const fonts = (await readdir(path.join(source, "fonts"))).filter((name) => name.endsWith(".woff2"));
  for (const name of fonts) {
    await copyFile(path.join(source, "fonts", name), path.join(target, "fonts", name));
  }
}

// Map a bundled file such as node_modules/@scope/name/dist/x.js to its package folder.
function packageDirOf(inputPath) {
  const parts = inputPath.split(/[\\/]/);
  const index = parts.lastIndexOf("node_modules");
  if (index < 0) {
    return null;
  }
  const nameParts = parts[index + 1].startsWith("@") ? 2 : 1;
  return path.join(root, ...parts.slice(0, index + 1 + nameParts));
}

async function licenceTexts(packageDir) {
  const files = (await readdir(packageDir))
    .filter((name) => /^(licen[cs]e|copying)/i.test(name))
    .sort();
  if (files.length === 0) {
    throw new Error(`No LICENSE file found in ${packageDir}. Add its licence text by hand.`);
  }
  return Promise.all(
    files.map(async (name) => ({ name, text: await readFile(path.join(packageDir, name), "utf8") })),
  );
}

async function writeLicences(inputs) {
  const packageDirs = [...new Set(inputs.map(packageDirOf).filter(Boolean))];
  const packages = await Promise.all(
    packageDirs.map(async (dir) => {
      const manifest = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8"));
      return { manifest, texts: await licenceTexts(dir) };
    }),
  );
  packages.sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));

  const sections = packages.map(({ manifest, texts }) => {
    const header = [
      `${manifest.name} ${manifest.version}`,
      `License: ${manifest.license}`,
      ...(manifest.homepage ? [`Homepage: ${manifest.homepage}`] : []),
    ].join("\n");
    const bodies = texts.map(({ name, text }) => `--- ${name} ---\n\n${text.trimEnd()}`);
    return [header, ...bodies].join("\n\n");
  });
  const intro =
    "Third-party packages bundled into chat-vendor.js, the hljs-*.css files and katex/\n" +
    "(generated by scripts/build-vendor.mjs).";
  const rule = `\n\n${"=".repeat(78)}\n\n`;
  await writeFile(path.join(outDir, "LICENSES.txt"), `${intro}${rule}${sections.join(rule)}\n`);
  return packages.map(({ manifest }) => `${manifest.name}@${manifest.version}`);
}

await mkdir(outDir, { recursive: true });
const inputs = await bundleScript();
await buildThemes();
await copyKatex();
const bundled = await writeLicences(inputs);
console.log(`Wrote static/vendor/. Bundled packages: ${bundled.join(", ")}`);
