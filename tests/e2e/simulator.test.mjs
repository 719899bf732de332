// End-to-end test of the chat simulator: headless Debian chromium, driven by playwright-core,
// plays a WhatsApp user through the default survey from "hi" to an assignment, with one
// invalid answer on the way, against the local stack (`cargo xtask test` starts it and sets
// PRECHAT_E2E_URL). Saves a screenshot to tests/artifacts/.
//
// Answers are chosen by what the business asks, so the walk follows the survey as published.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { log, startChat, walkSurvey, waitFor, STEP_TIMEOUT } from "./walk.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.PRECHAT_E2E_URL || "http://127.0.0.1:3000";
const artifacts = join(here, "..", "artifacts");

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "prechat-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("pageerror", (e) => { console.error("[page error]", e); process.exitCode = 1; });
  try {
    await walk(page);
  } catch (e) {
    await page.screenshot({ path: join(artifacts, "simulator-failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function walk(page) {
  // 1. "hi" to an assignment, with one invalid answer: the seeded agents are online.
  await startChat(page, base, "Ana Silva");
  const first = await walkSurvey(page, { name: "Ana Silva", invalidEmail: true });
  assert.ok(first.invalidSent, "the survey asked for an email, and an invalid one was sent");
  assert.ok(first.sawRetry, "the invalid answer was refused with a retry prompt");
  assert.equal(first.retries, 1, "only the deliberately invalid answer was refused");
  await waitFor(async () => (await page.getByTestId("assigned-agent").count()) > 0, "the assigned agent");
  log(`assignment: ${await page.getByTestId("assignment").innerText()}`);

  // Meta's status webhooks for the business's messages end in "read": blue ticks.
  await waitFor(async () => (await page.getByTestId("ticks-read").count()) > 0, "read ticks");
  const answersPanel = await page.getByTestId("answers").innerText();
  assert.match(answersPanel, /ana\.silva@example\.com/, "the valid email is saved, the invalid one is not");
  assert.doesNotMatch(answersPanel, /not-an-email/);
  await page.screenshot({ path: join(artifacts, "simulator.png"), fullPage: true });
  log(`screenshot: ${join(artifacts, "simulator.png")}`);

  // 2. Every agent offline (toggled in the side panel): the next contact waits in line, and
  //    is assigned as soon as an agent comes online.
  await startChat(page, base, "Bob Jones");
  const toggles = page.getByTestId("agent-toggle");
  await waitFor(async () => (await toggles.count()) > 0, "the agents in the side panel");
  for (let i = 0; i < 10; i++) {
    const on = page.locator('[data-testid="agent-toggle"].on');
    if ((await on.count()) === 0) break;
    await on.first().click();
    await page.waitForTimeout(300);
  }
  await waitFor(async () => (await page.locator('[data-testid="agent-toggle"].on').count()) === 0, "every agent offline");
  await walkSurvey(page, { name: "Bob Jones", invalidEmail: false });
  await waitFor(async () => (await page.getByTestId("queue-position").count()) > 0, "a queue position");
  const waiting = await page.getByTestId("assignment").innerText();
  log(`assignment: ${waiting}`);
  assert.match(waiting, /queue position 1/);
  assert.equal(await page.getByTestId("assigned-agent").count(), 0, "nobody is assigned while every agent is offline");
  const alice = page.getByTestId("agent-toggle").first();
  await alice.click();
  await waitFor(async () => (await page.getByTestId("assigned-agent").count()) > 0, "assignment once an agent is online");
  log(`assignment: ${await page.getByTestId("assignment").innerText()}`);
  await page.screenshot({ path: join(artifacts, "simulator-queue.png"), fullPage: true });
}

main().then(() => log("passed"), (e) => { console.error("[e2e] FAILED:", e.message); process.exit(1); });
