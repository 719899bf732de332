// The web chat form's JavaScript validators (shared/web/widget/validators.js) against the test
// vectors the Rust validators are checked with (shared/surveys/testdata/validators.json): every
// row of a kind the browser validates must give the same verdict and the same normalised answer.
// Country rows are the server's only (the form offers a list). Run by `cargo xtask test` / `e2e`.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const V = createRequire(import.meta.url)(join(root, "shared/web/widget/validators.js"));
const rows = JSON.parse(readFileSync(join(root, "shared/surveys/testdata/validators.json"), "utf8"));
const TODAY = "2026-11-23"; // the vectors' day when a row names none (as the Rust test reads them)

const run = {
  email: (r) => V.email(r.input),
  phone: (r) => V.phone(r.input, r.calling_code),
  number: (r) => V.number(r.input, { min: r.min ?? null, max: r.max ?? null, integer: !!r.integer }),
  date: (r) => V.date(r.input, { language: r.language || "en", today: r.today || TODAY, min: r.min ?? null, max: r.max ?? null }),
  yes_no: (r) => V.yesNo(r.input),
  text: (r) => V.text(r.input, { min_length: r.min_length ?? 0, max_length: r.max_length ?? Infinity }),
};

let checked = 0;
let skipped = 0;
const failures = [];
for (const r of rows) {
  const f = run[r.kind];
  if (!f) { skipped += 1; continue; }
  checked += 1;
  let got;
  try { got = f(r); } catch (e) { got = `threw ${e.message}`; }
  const want = r.valid ? r.normalised : null;
  if (got !== want) failures.push(`${r.kind} ${JSON.stringify(r.input)}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
}
if (failures.length) {
  console.error(`[validators] ${failures.length} of ${checked} vectors differ from the Rust validators:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log(`[validators] ${checked} vectors agree with the Rust validators (${skipped} server-only rows skipped)`);
