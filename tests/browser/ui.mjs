// End-to-end browser test of AskAcme's web UI.
//
// Run against a running server (auth on, sample HR handbook, fake model):
//
//   ASKACME_URL=http://127.0.0.1:PORT \
//   ASKACME_CHAT_KEY=... ASKACME_MASTER_KEY=... \
//   ASKACME_SCREENSHOTS=target/browser-screenshots \
//   node tests/browser/ui.mjs
//
// Uses Debian's chromium (scripts/browser-setup.sh installs it) through
// playwright-core; never downloads a browser. Prints `ok - STEP` per step,
// `not ok - STEP: reason` (plus failure.png) on the first failure, and a
// closing `N passed, N failed` line.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const QUESTION = 'How long is parental leave?';
const EXPECTED = '20 weeks';
const COMMENT = 'Please mention part-time staff';
const TIMEOUT_MS = 30_000;

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`not ok - setup: environment variable ${name} is not set`);
    console.error('0 passed, 1 failed');
    process.exit(1);
  }
  return value;
}

const BASE = requireEnv('ASKACME_URL').replace(/\/+$/, '');
const CHAT_KEY = requireEnv('ASKACME_CHAT_KEY');
const MASTER_KEY = requireEnv('ASKACME_MASTER_KEY');
const SHOTS = process.env.ASKACME_SCREENSHOTS || path.join(os.tmpdir(), 'askacme-screenshots');
const ORIGIN = new URL(BASE).origin;
fs.mkdirSync(SHOTS, { recursive: true });
fs.rmSync(path.join(SHOTS, 'failure.png'), { force: true }); // from an earlier run

// ---------------------------------------------------------------- harness

let browser;
let page;
let passed = 0;
const consoleErrors = []; // console errors and uncaught page errors
const foreignRequests = []; // requests that left the server's origin
let requestsSeen = 0;

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function screenshot(name, options = {}) {
  return page.screenshot({ path: path.join(SHOTS, name), ...options });
}

// Errors the page reported while `fn` ran, or requests to another origin,
// fail the step they happened in.
function takeProblems() {
  const problems = [
    ...consoleErrors.splice(0).map((e) => `browser error: ${e}`),
    ...foreignRequests.splice(0).map((u) => `request to another origin: ${u}`),
  ];
  return problems;
}

async function step(name, fn) {
  try {
    await fn();
    const problems = takeProblems();
    if (problems.length) throw new Error(problems.join('; '));
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (err) {
    const message = String(err?.message ?? err).replace(/\x1b\[[0-9;]*m/g, ''); // no ANSI colours
    const [reason, ...details] = message.split('\n');
    console.log(`not ok - ${name}: ${reason}`);
    for (const line of details.filter((l) => l.trim())) console.log(`#   ${line}`);
    for (const problem of takeProblems()) console.log(`#   also: ${problem}`);
    if (page) {
      // Whatever the page shows as an error (banners, form errors) helps explain it.
      const alerts = await page
        .locator('[role="alert"]:visible')
        .allTextContents()
        .catch(() => []);
      for (const text of alerts.map((t) => t.trim()).filter(Boolean)) console.log(`#   page says: ${text}`);
      try {
        await screenshot('failure.png', { fullPage: true });
        console.log(`#   screenshot: ${path.join(SHOTS, 'failure.png')}`);
      } catch (shotErr) {
        console.log(`#   could not save failure.png: ${shotErr.message.split('\n')[0]}`);
      }
    }
    console.log(`${passed} passed, 1 failed`);
    await browser?.close().catch(() => {});
    process.exit(1);
  }
}

function isAllowedUrl(url) {
  if (url.startsWith('data:') || url.startsWith('blob:')) return true;
  try {
    return new URL(url).origin === ORIGIN;
  } catch {
    return false;
  }
}

// Console errors that are expected and not the UI's fault:
// - the sign-in forms probe the API first and get a 401, which Chromium logs
//   as "Failed to load resource: ... status of 401";
// - Chromium fetches /favicon.ico by itself and logs it if that is missing.
function isIgnoredConsoleError(msg) {
  const text = msg.text();
  if (!text.startsWith('Failed to load resource')) return false;
  if (/status of 401\b/.test(text)) return true;
  const url = msg.location()?.url ?? '';
  return url === `${ORIGIN}/favicon.ico`;
}

// Integer shown in a dashboard metric, e.g. "1" or "1,234".
async function metricValue(name) {
  const text = (await page.locator(`[data-metric="${name}"] .value`).first().textContent()) ?? '';
  const match = text.replace(/[,\s\u00a0]/g, '').match(/-?\d+/);
  assert(match, `[data-metric="${name}"] .value is not a number: ${JSON.stringify(text)}`);
  return Number.parseInt(match[0], 10);
}

// ------------------------------------------------------------------ steps

await step('launch chromium', async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    timeout: 60_000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(TIMEOUT_MS);
  context.setDefaultNavigationTimeout(TIMEOUT_MS);
  page = await context.newPage();
  page.on('request', (req) => {
    requestsSeen += 1;
    if (!isAllowedUrl(req.url())) foreignRequests.push(req.url());
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !isIgnoredConsoleError(msg)) {
      const where = msg.location()?.url ? ` (${msg.location().url})` : '';
      consoleErrors.push(`console: ${msg.text()}${where}`);
    }
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
});

await step('chat: sign in with an API key', async () => {
  const response = await page.goto(`${BASE}/`);
  assert(response && response.ok(), `GET / answered ${response?.status()}`);
  await page.locator('#signin').waitFor({ state: 'visible' });
  await screenshot('chat-signin.png');
  await page.locator('#signin-key').fill(CHAT_KEY);
  await page.locator('#signin-submit').click();
  await page.locator('#signin').waitFor({ state: 'hidden' });
  await page.locator('#question').waitFor({ state: 'visible' });
});

let answer; // locator of the assistant message under test
let requestId;

await step('chat: ask a question and get a streamed, cited answer', async () => {
  const assistants = page.locator('.message.assistant');
  const before = await assistants.count();
  const messagesBefore = await page.locator('.message').count();
  await page.locator('#question').fill(QUESTION);
  await page.locator('#question').press('Enter');
  try {
    // Submitting shows the question (or the answer placeholder) at once.
    await page.waitForFunction((n) => document.querySelectorAll('.message').length > n, messagesBefore, {
      timeout: 5_000,
    });
  } catch {
    console.log('#   Enter did not submit the question; clicking #ask');
    await page.locator('#ask').click();
  }
  answer = assistants.nth(before);
  await answer.waitFor({ state: 'attached' });
  // data-status is "streaming" while tokens arrive; wait until it settles.
  const handle = await page.waitForFunction(
    (n) => {
      const el = document.querySelectorAll('.message.assistant')[n];
      const status = el?.getAttribute('data-status');
      return status && status !== 'streaming' && status !== 'pending' ? status : null;
    },
    before,
  );
  const status = await handle.jsonValue();
  assert(status === 'success', `answer finished with data-status="${status}"`);

  const text = (await answer.locator('.answer-text').first().textContent()) ?? '';
  assert(text.includes(EXPECTED), `.answer-text does not contain "${EXPECTED}": ${JSON.stringify(text)}`);
  const citations = await answer.locator('a.citation[data-n="1"]').count();
  assert(citations >= 1, 'no a.citation[data-n="1"] in the answer');
  const sources = await answer.locator('.sources li a.source-link[data-source-id]').count();
  assert(sources >= 1, 'no .sources li a.source-link[data-source-id] in the answer');
  requestId = (await answer.getAttribute('data-request-id')) ?? '';
  assert(requestId.trim() !== '', 'the answer has no data-request-id');
  console.log(`#   request id: ${requestId}`);
  await screenshot('chat-answer.png');
});

await step('chat: open the cited source and see the cited passage', async () => {
  await answer.locator('a.source-link').first().click();
  const view = page.locator('#source-view');
  await view.waitFor({ state: 'visible' });
  // The passage is fetched after the view opens; the title is set with it.
  const marks = page.locator('#source-view mark.cited');
  await marks.first().waitFor({ state: 'visible' });
  const title = ((await page.locator('#source-title').textContent()) ?? '').trim();
  assert(title !== '', '#source-title is empty');
  console.log(`#   source: ${title}`);
  const texts = await marks.allTextContents();
  const joined = texts.join(' ').replace(/\s+/g, ' ').toLowerCase();
  assert(
    texts.some((t) => t.toLowerCase().includes(EXPECTED)) || joined.includes(EXPECTED),
    `no mark.cited contains "${EXPECTED}": ${JSON.stringify(texts)}`,
  );
  await marks.first().scrollIntoViewIfNeeded();
  await screenshot('chat-source.png');
  await page.locator('#source-close').click();
  await view.waitFor({ state: 'hidden' });
});

await step('chat: send thumbs-down feedback with a comment', async () => {
  await answer.locator('.feedback-down').click();
  const comment = answer.locator('.feedback-comment');
  await comment.waitFor({ state: 'visible' });
  await comment.fill(COMMENT);
  await answer.locator('.feedback-send').click();
  await answer.locator('.feedback-thanks').waitFor({ state: 'visible' });
});

await step('admin: sign in with the master key and see the request in the dashboard', async () => {
  const response = await page.goto(`${BASE}/admin`);
  assert(response && response.ok(), `GET /admin answered ${response?.status()}`);
  await page.locator('#admin-signin').waitFor({ state: 'visible' });
  await page.locator('#admin-key').fill(MASTER_KEY);
  await page.locator('#admin-signin-submit').click();
  await page.locator('#dashboard[data-loaded="true"]').waitFor({ state: 'attached' });

  const thumbsDown = await metricValue('thumbs_down');
  assert(thumbsDown === 1, `thumbs_down metric is ${thumbsDown}, expected 1`);
  const answers = await metricValue('answers');
  assert(answers >= 1, `answers metric is ${answers}, expected >= 1`);

  const values = (await page.locator('#chart-requests [data-value]').evaluateAll((els) =>
    els.map((el) => el.getAttribute('data-value')),
  ))
    .map((v) => (v === null || v.trim() === '' ? NaN : Number(v)))
    .filter((v) => Number.isFinite(v));
  assert(values.length >= 1, '#chart-requests has no element with a numeric data-value');
  const total = values.reduce((a, b) => a + b, 0);
  assert(total >= 1, `#chart-requests data-values sum to ${total}, expected >= 1`);

  const feedback = (await page.locator('#table-feedback tbody').first().textContent()) ?? '';
  assert(feedback.includes(COMMENT), `#table-feedback does not show the comment "${COMMENT}"`);
  // An empty table still has one placeholder row (<td class="empty">No data yet</td>).
  const deployments = await page
    .locator('#table-deployments tbody tr')
    .evaluateAll((rows) => rows.filter((r) => r.cells.length > 0 && !r.querySelector('td.empty')).length);
  assert(deployments >= 1, '#table-deployments has no rows');

  await screenshot('admin.png', { fullPage: true });
});

await step('pages loaded nothing from another origin and logged no errors', async () => {
  // Each step already failed on its own errors and foreign requests; this
  // makes sure the listeners were really watching.
  assert(requestsSeen > 0, 'no request was observed at all');
  console.log(`#   ${requestsSeen} requests, all to ${ORIGIN}`);
});

await browser.close();
console.log(`#   screenshots in ${SHOTS}`);
console.log(`${passed} passed, 0 failed`);
process.exit(0);
