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

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.PRECHAT_E2E_URL || "http://127.0.0.1:3000";
const artifacts = join(here, "..", "artifacts");
const STEP_TIMEOUT = 30_000;

// What to write for a free-text question, by the words of its prompt. The first matching rule wins.
const EMAIL_PROMPT = /e-?mail/i;
const answers = [
  [EMAIL_PROMPT, "ana.silva@example.com"],
  [/phone|reach you/i, "+1 650 555 1234"],
  [/customer id/i, "C123456"],
  [/order number/i, "12345678"],
  [/country/i, "Spain"],
  [/company|business name/i, "Acme Ltd"],
  [/briefly|how can we help|describe|tell us|details/i, "I would like a quote for 20 laptops."],
];

const log = (...a) => console.log("[e2e]", ...a);

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
  await startChat(page, "Ana Silva");
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
  await startChat(page, "Bob Jones");
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

async function startChat(page, name) {
  await page.goto(base + "/");
  await page.getByTestId("name").fill(name);
  // A fresh number per run, so a re-run against the same stack starts a new contact.
  const phone = "+1 650 " + String(Date.now()).slice(-7);
  await page.getByTestId("phone").fill(phone);
  await page.getByTestId("start").click();
  await sendText(page, "hi");
  const mine = page.getByTestId("user-message");
  assert.equal((await mine.first().innerText()).split("\n")[0], "hi");
}

/** Answers the business's questions until the side panel shows an assignment outcome. */
async function walkSurvey(page, { name, invalidEmail }) {
  let invalidSent = false;
  let sawRetry = false;
  let retries = 0;
  let seen = 0;
  for (let step = 0; step < 30; step++) {
    if (await assigned(page)) break;
    const business = page.getByTestId("business-message");
    await waitFor(async () => (await business.count()) > seen || (await assigned(page)), "a reply from the business");
    if (await assigned(page)) break;
    // Let a burst of messages (e.g. greeting + first question) arrive before answering the last.
    await page.waitForTimeout(800);
    const count = await business.count();
    seen = count;
    const prompt = await business.nth(count - 1).innerText();
    log(`business: ${prompt.split("\n")[0]}`);
    if (/not look like|try again|did not understand/i.test(prompt)) {
      retries += 1;
      sawRetry ||= invalidSent;
    }
    const buttons = page.locator('[data-testid="reply-button"]:not([disabled])');
    const list = page.locator('[data-testid="list-open"]:not([disabled])');
    if (await buttons.count()) {
      const b = buttons.first();
      log(`tap button: ${await b.innerText()}`);
      await b.click();
    } else if (await list.count()) {
      await list.last().click();
      const row = page.getByTestId("list-row").first();
      log(`choose row: ${(await row.innerText()).split("\n")[0]}`);
      await row.click();
    } else if (/thank you|agent will|connecting you|talking to|in line|queue|away|closed/i.test(prompt)) {
      continue; // no question: the survey is over; wait for the assignment.
    } else {
      let text = /full name|your name/i.test(prompt) ? name
        : (answers.find(([re]) => re.test(prompt)) || [null, "SKIP"])[1];
      if (invalidEmail && EMAIL_PROMPT.test(prompt) && !invalidSent) {
        text = "not-an-email";
        invalidSent = true;
      }
      log(`write: ${text}`);
      await sendText(page, text);
    }
  }
  await waitFor(() => assigned(page), "an assignment outcome in the side panel");
  return { invalidSent, sawRetry, retries };
}

async function sendText(page, text) {
  const before = await page.getByTestId("user-message").count();
  await page.getByTestId("text").fill(text);
  await page.getByTestId("send").click();
  await waitFor(async () => (await page.getByTestId("user-message").count()) > before, `"${text}" in the chat`);
}

async function assigned(page) {
  return (await page.locator('[data-testid="assigned-agent"], [data-testid="assignment-outcome"]').count()) > 0;
}

async function waitFor(check, what, timeout = STEP_TIMEOUT) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

main().then(() => log("passed"), (e) => { console.error("[e2e] FAILED:", e.message); process.exit(1); });
