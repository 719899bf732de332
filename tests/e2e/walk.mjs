// The simulated WhatsApp user's side of the browser tests: start a chat on the simulator page
// (`/`), walk the published survey by what the business asks, send texts. Shared by
// simulator.test.mjs and inbox.test.mjs.

import assert from "node:assert/strict";

export const STEP_TIMEOUT = 30_000;

export const log = (...a) => console.log("[e2e]", ...a);

// What to write for a free-text question, by the words of its prompt. The first matching rule wins.
export const EMAIL_PROMPT = /e-?mail/i;
const answers = [
  [EMAIL_PROMPT, "ana.silva@example.com"],
  [/phone|reach you/i, "+1 650 555 1234"],
  [/customer id/i, "C123456"],
  [/order number/i, "12345678"],
  [/country/i, "Spain"],
  [/company|business name/i, "Acme Ltd"],
  [/briefly|how can we help|describe|tell us|details/i, "I would like a quote for 20 laptops."],
];

let seq = 0;

/** Opens the simulator as a new contact (a fresh number per call) and says "hi". */
export async function startChat(page, base, name) {
  await page.goto(base + "/");
  await page.getByTestId("name").fill(name);
  // A fresh number per run, so a re-run against the same stack starts a new contact.
  seq += 1;
  const phone = "+1 650 " + String(Date.now() + seq * 7919).slice(-7);
  await page.getByTestId("phone").fill(phone);
  await page.getByTestId("start").click();
  await sendText(page, "hi");
  const mine = page.getByTestId("user-message");
  assert.equal((await mine.first().innerText()).split("\n")[0], "hi");
}

/** Answers the business's questions until the side panel shows an assignment outcome. */
export async function walkSurvey(page, { name, invalidEmail }) {
  let invalidSent = false;
  let sawRetry = false;
  let retries = 0;
  let seen = 0;
  let lastSentAt = 0; // when the last answer went out (Date.now())
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
    const asks = prompt.includes("?") || (await buttons.count()) > 0 || (await list.count()) > 0
      || /try again|write skip/i.test(prompt);
    const over = /thank you|agent will|connecting you|talking to|in line|queue|away|closed/i.test(prompt);
    if (!asks && !over) {
      // A statement (the greeting): its question is still on the way on a busy machine.
      continue;
    }
    if (await buttons.count()) {
      const b = buttons.first();
      log(`tap button: ${await b.innerText()}`);
      lastSentAt = Date.now();
      await b.click();
    } else if (await list.count()) {
      await list.last().click();
      const row = page.getByTestId("list-row").first();
      log(`choose row: ${(await row.innerText()).split("\n")[0]}`);
      lastSentAt = Date.now();
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
      lastSentAt = Date.now();
      await sendText(page, text);
    }
  }
  await waitFor(() => assigned(page), "an assignment outcome in the side panel");
  return { invalidSent, sawRetry, retries, lastSentAt };
}

export async function sendText(page, text) {
  const before = await page.getByTestId("user-message").count();
  await page.getByTestId("text").fill(text);
  await page.getByTestId("send").click();
  await waitFor(async () => (await page.getByTestId("user-message").count()) > before, `"${text}" in the chat`);
}

export async function assigned(page) {
  return (await page.locator('[data-testid="assigned-agent"], [data-testid="assignment-outcome"]').count()) > 0;
}

export async function waitFor(check, what, timeout = STEP_TIMEOUT) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

