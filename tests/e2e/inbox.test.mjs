// End-to-end test of the agent inbox (`/inbox`) next to the chat simulator, in headless Debian
// chromium, against a fresh local stack (`cargo xtask test` starts one for this test and sets
// PRECHAT_E2E_URL and PRECHAT_E2E_STACK_LOG, whose start-up lines hold the local passwords).
//
// alice (sales and support, capacity 2) and bruno (support only) sign in with the page's own
// Cognito sign-in. Three contacts walk the default survey into sales: the first two are
// assigned to alice and appear in her list without a reload (pushed over the WebSocket), the
// third waits in line. alice reads the answers card, sees the contact's follow-up live,
// replies with Enter, sees the read tick; a message with HTML in it shows as text. When alice
// closes the first conversation, the waiting contact appears in her list. bruno never sees any
// of it. The latencies (contact -> inbox) are printed; screenshots go to tests/artifacts/.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { log, startChat, walkSurvey, sendText, waitFor, STEP_TIMEOUT } from "./walk.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const base = process.env.PRECHAT_E2E_URL || "http://127.0.0.1:3000";
const artifacts = join(here, "..", "artifacts");
const LIVE_TIMEOUT = 20_000; // generous: the target is under 2 s, measured and printed

/** The local users' passwords, from the stack's start-up lines (`  alice   <password>  [agents leads]`). */
function passwords() {
  const path = process.env.PRECHAT_E2E_STACK_LOG;
  assert.ok(path, "PRECHAT_E2E_STACK_LOG names the stack's log");
  const found = {};
  for (const m of readFileSync(path, "utf8").matchAll(/^ {2}(\w+) +(\S+) +\[[^\]]*\]$/gm)) found[m[1]] = m[2];
  return found;
}

async function signIn(page, user, password) {
  await page.goto(base + "/inbox");
  await page.getByTestId("username").fill(user);
  await page.getByTestId("password").fill(password);
  await page.getByTestId("signin").click();
  await page.getByTestId("me").filter({ hasText: user }).waitFor();
  await waitFor(async () => (await page.getByTestId("live").innerText()) === "live", `${user}'s socket`, LIVE_TIMEOUT);
}

/** The names in an inbox's list on `tab`. */
async function names(page, tab) {
  await page.getByTestId(`tab-${tab}`).click();
  return page.getByTestId("conv-item-name").allInnerTexts();
}

/** Waits until `name` is in alice's "Mine" list (no reload), and returns when it was seen. */
async function appears(page, name) {
  await page.getByTestId("tab-mine").click();
  const item = page.getByTestId("conv-item").filter({ hasText: name });
  await waitFor(async () => (await item.count()) > 0, `${name} in the list`, LIVE_TIMEOUT);
  return Date.now();
}

async function transcriptHas(page, text) {
  const hit = page.getByTestId("transcript").getByText(text, { exact: true });
  await waitFor(async () => (await hit.count()) > 0, `"${text}" in the transcript`, LIVE_TIMEOUT);
  return Date.now();
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const pw = passwords();
  assert.ok(pw.alice && pw.bruno, `the stack log lists alice's and bruno's passwords: ${Object.keys(pw)}`);
  const profile = mkdtempSync(join(tmpdir(), "prechat-e2e-inbox-"));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  // One context per person: separate sessionStorage, as separate browsers.
  const open = async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    page.on("pageerror", (e) => { console.error("[page error]", e); process.exitCode = 1; });
    return page;
  };
  const [alice, bruno, contact] = [await open(), await open(), await open()];
  try {
    await run(alice, bruno, contact, pw);
  } catch (e) {
    for (const [who, p] of [["alice", alice], ["bruno", bruno], ["contact", contact]]) {
      await p.screenshot({ path: join(artifacts, `inbox-failure-${who}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function run(alice, bruno, contact, pw) {
  await signIn(alice, "alice", pw.alice);
  await signIn(bruno, "bruno", pw.bruno);
  const latencies = { assigned: [], message: [] };

  // 1. Carla completes the survey: she appears in alice's list without a reload.
  await startChat(contact, base, "Carla Diaz");
  const carla = await walkSurvey(contact, { name: "Carla Diaz", invalidEmail: false });
  latencies.assigned.push((await appears(alice, "Carla Diaz")) - carla.lastSentAt);
  await alice.getByTestId("conv-item").filter({ hasText: "Carla Diaz" }).click();
  const card = alice.getByTestId("answers");
  await waitFor(async () => /Carla Diaz/.test(await card.innerText()), "the answers card");
  assert.match(await card.innerText(), /Email[\s\S]*@example\.com/, "the answers card is labelled");
  assert.match(await card.innerText(), /Topic\s+Buying/, "a choice shows its option's label");
  assert.match(await alice.getByTestId("conv-name").innerText(), /Carla Diaz/);

  // 2. The contact writes; alice sees it live.
  let sent = Date.now();
  await sendText(contact, "my order has not arrived");
  latencies.message.push((await transcriptHas(alice, "my order has not arrived")) - sent);

  // 3. What a contact types is text, never HTML.
  const html = '<img src="x" onerror="window.__pwned=1">';
  sent = Date.now();
  await sendText(contact, html);
  latencies.message.push((await transcriptHas(alice, html)) - sent);
  assert.equal(await alice.locator('[data-testid="transcript"] img').count(), 0, "no element from the contact's text");
  assert.equal(await alice.evaluate(() => window.__pwned), undefined, "the contact's markup never ran");

  // 4. alice replies with Enter; the contact gets it; the tick ends at "read".
  await alice.getByTestId("reply").fill("Let me check");
  await alice.getByTestId("reply").press("Enter");
  const reply = contact.getByTestId("business-message").filter({ hasText: "Let me check" });
  await waitFor(async () => (await reply.count()) > 0, "alice's reply in the simulator", LIVE_TIMEOUT);
  const tick = alice.getByTestId("msg-agent").filter({ hasText: "Let me check" }).getByTestId("tick");
  await waitFor(async () => (await tick.count()) > 0 && (await tick.getAttribute("data-status")) === "read", "the read tick", LIVE_TIMEOUT);
  await alice.screenshot({ path: join(artifacts, "inbox-alice.png"), fullPage: true });
  log(`screenshot: ${join(artifacts, "inbox-alice.png")}`);

  // 5. Two more contacts: Dan takes alice's second slot, Erin waits in line.
  await startChat(contact, base, "Dan Brown");
  const dan = await walkSurvey(contact, { name: "Dan Brown", invalidEmail: false });
  latencies.assigned.push((await appears(alice, "Dan Brown")) - dan.lastSentAt);
  await startChat(contact, base, "Erin Wait");
  await walkSurvey(contact, { name: "Erin Wait", invalidEmail: false });
  await waitFor(async () => (await contact.getByTestId("queue-position").count()) > 0, "Erin's place in line");
  assert.ok(!(await names(alice, "mine")).includes("Erin Wait"), "Erin waits: alice is full");
  // The line reaches alice's list by push (or her next poll): wait for it, as for "mine".
  await waitFor(async () => (await names(alice, "waiting")).includes("Erin Wait"), "alice, a lead, sees sales' waiting line", LIVE_TIMEOUT);

  // 6. bruno (support only) saw none of it.
  for (const tab of ["mine", "waiting", "closed"]) {
    const seen = await names(bruno, tab);
    for (const n of ["Carla Diaz", "Dan Brown", "Erin Wait"]) assert.ok(!seen.includes(n), `bruno sees ${n} in ${tab}`);
  }
  await bruno.screenshot({ path: join(artifacts, "inbox-bruno.png"), fullPage: true });

  // 7. alice closes Carla's conversation: Erin is assigned to her and appears without a reload.
  await alice.getByTestId("tab-mine").click();
  await alice.getByTestId("conv-item").filter({ hasText: "Carla Diaz" }).click();
  await alice.getByTestId("close").click();
  const closed = alice.getByTestId("event").filter({ hasText: "Closed by alice" });
  await waitFor(async () => (await closed.count()) > 0, "the closed line");
  await appears(alice, "Erin Wait");
  assert.equal(await closed.count(), 1, "one closed line per close");
  assert.ok(!(await names(alice, "mine")).includes("Carla Diaz"), "a closed conversation leaves Mine");
  assert.ok((await names(alice, "closed")).includes("Carla Diaz"), "and is under Closed");
  await alice.getByTestId("tab-mine").click();
  await alice.screenshot({ path: join(artifacts, "inbox-after-close.png"), fullPage: true });

  const fmt = (xs) => xs.map((x) => `${x} ms`).join(", ");
  log(`measured: contact's last answer -> conversation in alice's list: ${fmt(latencies.assigned)}`);
  log(`measured: contact's message -> alice's transcript: ${fmt(latencies.message)}`);
}

main().then(() => log("inbox passed"), (e) => { console.error("[e2e] inbox FAILED:", e.message); process.exit(1); });
