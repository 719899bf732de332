// End-to-end test of the web chat widget on a business's page, in headless Debian chromium,
// against a fresh local stack (`cargo xtask test`; PRECHAT_E2E_URL, PRECHAT_E2E_STACK_LOG).
//
// The host page is served on `localhost`, the widget and its endpoints on `127.0.0.1`: another
// origin, as on a real website. The Spanish form shows the survey's Spanish labels and its own
// start button; an invalid email shows the survey's retry text and sends nothing; the corrected
// form is submitted; the visitor sees the assignment to Alice; alice sees the conversation in her
// inbox with the answers, replies, and the visitor sees the reply; the visitor's message reaches
// alice; a reload continues the same conversation. Screenshots go to tests/artifacts/.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { log, waitFor, STEP_TIMEOUT } from "./walk.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.PRECHAT_E2E_URL || "http://127.0.0.1:3000";
const hostBase = base.replace("127.0.0.1", "localhost");
const artifacts = join(here, "..", "artifacts");
const LIVE = 20_000;

function passwords() {
  const found = {};
  const text = readFileSync(process.env.PRECHAT_E2E_STACK_LOG, "utf8");
  for (const m of text.matchAll(/^ {2}(\w+) +(\S+) +\[[^\]]*\]$/gm)) found[m[1]] = m[2];
  return found;
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const open = async (viewport) => {
    const ctx = await browser.newContext({ viewport, locale: "es-ES" });
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on("pageerror", (e) => { console.error("[page error]", e); process.exitCode = 1; });
    return page;
  };
  const visitor = await open({ width: 360, height: 780 }); // the narrowest phone the issue names
  const alice = await open({ width: 1280, height: 860 });
  try {
    await run(visitor, alice);
  } catch (e) {
    await visitor.screenshot({ path: join(artifacts, "webchat-failure-visitor.png"), fullPage: true }).catch(() => {});
    await alice.screenshot({ path: join(artifacts, "webchat-failure-alice.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

async function run(visitor, alice) {
  const pw = passwords();
  await alice.goto(base + "/inbox");
  await alice.getByTestId("username").fill("alice");
  await alice.getByTestId("password").fill(pw.alice);
  await alice.getByTestId("signin").click();
  await alice.getByTestId("me").filter({ hasText: "alice" }).waitFor();

  // 1. The host page (another origin) with the widget, in Spanish.
  await visitor.goto(hostBase + "/local/host?lang=es");
  await visitor.getByTestId("wc-launcher").click();
  await visitor.getByTestId("wc-form").waitFor();
  assert.equal(await visitor.getByTestId("wc-start").innerText(), "Empezar chat");
  const form = await visitor.getByTestId("wc-form").innerText();
  for (const label of ["Nombre", "Correo", "Tema", "País"]) assert.match(form, new RegExp(label), `the Spanish label ${label}`);
  assert.equal(await visitor.getByTestId("wc-field-order_id").isVisible(), false, "the order number waits for 'an existing order'");

  // 2. Fill it in; an invalid email is refused with the survey's retry text, nothing is sent.
  await visitor.getByTestId("wc-language-es").check();
  await visitor.getByTestId("wc-input-consent").check();
  await visitor.getByTestId("wc-input-name").fill("Lucía Pérez");
  await visitor.getByTestId("wc-input-email").fill("lucia-en-ejemplo");
  await visitor.getByTestId("wc-inquiry-sales").check();
  await visitor.getByTestId("wc-input-country").selectOption("ES");
  await visitor.getByTestId("wc-input-description").fill("Quiero un presupuesto para 20 portátiles.");
  let posted = 0;
  visitor.on("request", (r) => { if (r.url().endsWith("/webchat/conversations") && r.method() === "POST") posted += 1; });
  await visitor.getByTestId("wc-start").click();
  const emailError = visitor.getByTestId("wc-error-email");
  await waitFor(async () => (await emailError.innerText()).length > 0, "the email's retry text");
  log(`email refused: ${await emailError.innerText()}`);
  assert.equal(posted, 0, "nothing is submitted while a field is invalid");
  await visitor.screenshot({ path: join(artifacts, "webchat-form.png"), fullPage: true });

  // 3. Corrected: submitted; the visitor sees the assignment.
  await visitor.getByTestId("wc-input-email").fill("lucia@ejemplo.es");
  const submitted = Date.now();
  await visitor.getByTestId("wc-start").click();
  const status = visitor.getByTestId("wc-status");
  await waitFor(async () => /Alice/.test(await status.innerText().catch(() => "")), "the assignment to Alice", LIVE);
  log(`visitor sees: ${await status.innerText()} (${Date.now() - submitted} ms after submitting)`);

  // 4. alice has it, with the answers; she replies; the visitor sees the reply.
  const item = alice.getByTestId("conv-item").filter({ hasText: "Lucía Pérez" });
  await waitFor(async () => (await item.count()) > 0, "the web conversation in alice's list", LIVE);
  await item.click();
  const card = alice.getByTestId("answers");
  await waitFor(async () => /lucia@ejemplo\.es/.test(await card.innerText()), "the answers card");
  await alice.getByTestId("reply").fill("¡Hola Lucía! Te preparo el presupuesto.");
  await alice.getByTestId("reply").press("Enter");
  const reply = visitor.getByTestId("wc-theirs").filter({ hasText: "Te preparo el presupuesto" });
  await waitFor(async () => (await reply.count()) > 0, "alice's reply in the widget", LIVE);

  // 5. The visitor writes; alice sees it. What the visitor types is text.
  await visitor.getByTestId("wc-text").fill("Gracias <b>mil</b>");
  await visitor.getByTestId("wc-text").press("Enter");
  const inInbox = alice.getByTestId("transcript").getByText("Gracias <b>mil</b>", { exact: true });
  await waitFor(async () => (await inInbox.count()) > 0, "the visitor's message in alice's transcript", LIVE);
  const mine = visitor.getByTestId("wc-mine").filter({ hasText: "Gracias <b>mil</b>" });
  await waitFor(async () => (await mine.count()) === 1, "the visitor's own message, as theirs", LIVE);
  assert.match(await reply.first().innerText(), /^Alice/, "an agent's reply is signed with the agent's name");
  await visitor.screenshot({ path: join(artifacts, "webchat-chat.png"), fullPage: true });
  await alice.screenshot({ path: join(artifacts, "webchat-inbox.png"), fullPage: true });

  // 6. A reload continues the same conversation.
  await visitor.reload();
  await visitor.getByTestId("wc-launcher").click();
  await waitFor(async () => (await visitor.getByTestId("wc-theirs").filter({ hasText: "Te preparo el presupuesto" }).count()) > 0, "the conversation after a reload", LIVE);
  assert.equal(await visitor.getByTestId("wc-form").count(), 0, "no second form after a reload");

  // 7. alice closes it: the visitor is told.
  await alice.getByTestId("close").click();
  const note = visitor.getByTestId("wc-note");
  await waitFor(async () => (await note.count()) > 0, "the closed note in the widget", LIVE);
  log(`visitor sees: ${await note.first().innerText()}`);
}

main().then(() => log("webchat passed"), (e) => { console.error("[e2e] webchat FAILED:", e.message); process.exit(1); });
