// The web console in a real browser (Chromium through playwright-core), against the hub
// of `tongban demo --console`. gateway/tests/console.rs starts the demo and runs this
// script with:
//   CONSOLE_URL      https://127.0.0.1:PORT (the console's origin)
//   LOGIN_URL        the steward's one-time sign-in link
//   PKI_DIR          ca.pem and identity folders (ops/, tax/, ...) with cert.pem, key.pem
//   SCREENSHOT_DIR   where the screenshots go (kept for people to look at)
//   OUT              a JSON file for the driver: {decisions, entity, screenshots}
//   PERSONAL_VALUES  a file of names and identity numbers, one a line, that the
//                    operations view must never show
//   CHROMIUM         the browser (default /usr/bin/chromium)
// Any failed check ends the run with a non-zero status and a sentence saying what failed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

// Each wait is short: the hub answers from memory and an embedded store.
const WAIT_MS = 10_000;
// The whole run; past this something hangs, and the driver should hear why.
const RUN_MS = 60_000;

function setting(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`console.mjs: the environment variable ${name} is not set (see the header of this file)`);
    process.exit(2);
  }
  return value;
}

const consoleUrl = new URL(setting('CONSOLE_URL'));
const origin = consoleUrl.origin;
const loginUrl = setting('LOGIN_URL');
const pkiDir = setting('PKI_DIR');
const screenshotDir = setting('SCREENSHOT_DIR');
const outPath = setting('OUT');
const personalValues = fs
  .readFileSync(setting('PERSONAL_VALUES'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const started = Date.now();
let current = 'starting';
function step(what) {
  current = what;
  console.log(`console.mjs [${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);
}

const screenshots = [];
async function screenshot(page, name) {
  const file = path.join(screenshotDir, name);
  await page.screenshot({ path: file, fullPage: true });
  screenshots.push(file);
  console.log(`  screenshot ${file}`);
}

// A browser context over the console's TLS, which our own CA vouches for (Chromium
// does not know it); `identity` names a folder of PKI_DIR whose certificate it presents.
async function context(browser, identity) {
  const options = { ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } };
  if (identity) {
    const folder = path.join(pkiDir, identity);
    options.clientCertificates = [
      { origin, certPath: path.join(folder, 'cert.pem'), keyPath: path.join(folder, 'key.pem') },
    ];
  }
  const created = await browser.newContext(options);
  created.setDefaultTimeout(WAIT_MS);
  created.setDefaultNavigationTimeout(WAIT_MS);
  return created;
}

function at(pathAndQuery) {
  return new URL(pathAndQuery, origin).href;
}

async function bodyView(page) {
  return page.getAttribute('body', 'data-view');
}

// Decides one pair of the review queue, by clicking its button (`how` = 'mouse') or by
// pressing a key on the current pair; returns what the driver checks in the feed.
async function decide(page, how, verdict) {
  const isDecide = (response) =>
    response.request().method() === 'POST' && /^\/review\/\d+\/decide$/.test(new URL(response.url()).pathname);
  let clicked = null;
  let act;
  if (how === 'mouse') {
    const article = page.locator('article.pair:not(.decided)').first();
    clicked = await article.getAttribute('data-pair');
    act = () => article.locator(`button.${verdict}`).click();
  } else {
    act = () => page.keyboard.press(how);
  }
  let response;
  try {
    [response] = await Promise.all([page.waitForResponse(isDecide, { timeout: WAIT_MS }), act()]);
  } catch (error) {
    const status = await page.locator('#status').textContent({ timeout: 1000 }).catch(() => '');
    throw new Error(
      `${how === 'mouse' ? `clicking "${verdict}" on pair ${clicked}` : `pressing ${how}`} sent no decision ` +
        `within ${WAIT_MS / 1000} s (#status: ${JSON.stringify(status)}): ${error.message}`,
    );
  }
  const text = await response.text();
  assert.equal(response.status(), 200, `POST ${response.url()} answered ${response.status()}: ${text}`);
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new Error(`POST ${response.url()} did not answer JSON: ${text.slice(0, 200)}`);
  }
  assert.equal(answer.verdict, verdict, `the hub recorded another verdict: ${text}`);
  const pair = String(answer.pair);
  if (clicked !== null) {
    assert.equal(pair, clicked, `the click decided pair ${pair}, not the pair clicked (${clicked})`);
  }
  if (verdict === 'same') {
    assert.ok(answer.survivor, `a "same" decision names the survivor: ${text}`);
  }
  const selector = `article.pair[data-pair="${pair}"]`;
  await page
    .waitForFunction((s) => document.querySelector(s)?.classList.contains('decided'), selector, { timeout: WAIT_MS })
    .catch(() => {
      throw new Error(`pair ${pair} was decided (${text}) but its article never got the class "decided"`);
    });
  const article = page.locator(selector);
  const outcome = await article.getAttribute('data-outcome');
  assert.equal(outcome, verdict, `pair ${pair}: data-outcome is ${JSON.stringify(outcome)}, the verdict ${verdict}`);
  const decision = {
    pair: Number(pair),
    entity: await article.getAttribute('data-entity'),
    candidate: await article.getAttribute('data-candidate'),
    verdict,
    survivor: answer.survivor ?? null,
  };
  assert.ok(decision.entity && decision.candidate, `pair ${pair} names both sides: ${JSON.stringify(decision)}`);
  console.log(`  decided ${JSON.stringify(decision)}`);
  return decision;
}

// The entity that `first` (a "same" decision) ended in after the decisions that follow
// it: a later merge touching the same entities may have absorbed its survivor.
function survivorOf(first, decisions) {
  const group = new Set([first.entity, first.candidate, first.survivor]);
  let survivor = first.survivor;
  for (const later of decisions.slice(decisions.indexOf(first) + 1)) {
    const sides = [later.entity, later.candidate, later.survivor];
    if (later.verdict === 'same' && sides.some((id) => group.has(id))) {
      sides.forEach((id) => group.add(id));
      survivor = later.survivor;
    }
  }
  return survivor;
}

// Fails when any of the personal values occurs in `text`.
function assertNoPersonalData(text, where) {
  const found = personalValues.filter((value) => text.includes(value));
  assert.ok(found.length === 0, `${where} shows personal data: ${found.slice(0, 5).join(', ')}`);
}

async function steward(browser, out) {
  const ctx = await context(browser, null);
  const page = await ctx.newPage();
  lastPage = page;

  step('steward: opening the one-time sign-in link');
  const signedIn = await page.goto(loginUrl);
  assert.equal(signedIn?.status(), 200, `the sign-in link ended in ${signedIn?.status()} at ${page.url()}`);
  assert.equal(new URL(page.url()).pathname, '/review', `the sign-in link led to ${page.url()}, not /review`);
  assert.equal(await bodyView(page), 'review');
  const whoami = (await page.textContent('#whoami'))?.trim();
  assert.match(whoami ?? '', /^steward:/, `the header names the steward: ${whoami}`);
  const pairs = await page.locator('article.pair').count();
  console.log(`  signed in as ${whoami}; ${pairs} pairs on the first page`);
  assert.ok(pairs >= 3, `at least 3 pairs to review, found ${pairs}`);
  await screenshot(page, 'review.png');

  step('steward: first pair "same" with the mouse');
  out.decisions.push(await decide(page, 'mouse', 'same'));
  step('steward: next pair "different" with the key D');
  out.decisions.push(await decide(page, 'd', 'different'));
  step('steward: next pair "same" with the key S');
  out.decisions.push(await decide(page, 's', 'same'));
  const pairsDecided = new Set(out.decisions.map((d) => d.pair));
  assert.equal(pairsDecided.size, 3, `three different pairs decided: ${[...pairsDecided].join(', ')}`);
  await screenshot(page, 'review-decided.png');

  const merged = out.decisions[0];
  const survivor = survivorOf(merged, out.decisions);
  step(`steward: entity view of ${merged.candidate}, merged with ${merged.entity} into ${survivor}`);
  const shown = await page.goto(at(`/entities/${merged.candidate}`));
  assert.equal(shown?.status(), 200, `/entities/${merged.candidate} answered ${shown?.status()}`);
  assert.equal(await bodyView(page), 'entity');
  const unifiedId = await page.getAttribute('main#entity', 'data-unified-id');
  assert.equal(unifiedId, survivor, `the entity page shows ${unifiedId}, the merge's survivor is ${survivor}`);
  const attributes = await page.locator('table#attributes tr[data-attribute]').count();
  const withSource = await page.$$eval('table#attributes tr[data-attribute] td.source', (cells) =>
    cells.filter((cell) => cell.textContent.trim() !== '').length,
  );
  console.log(`  ${unifiedId}: ${attributes} attributes, ${withSource} with their source`);
  assert.ok(withSource > 0, `the attributes of ${unifiedId} say where they come from (td.source)`);
  const sources = await page.locator('section#sources tr.source').count();
  assert.ok(sources >= 2, `the merged entity ${unifiedId} lists at least 2 sources, found ${sources}`);
  assert.equal(await page.locator('section#relations svg#relation-graph').count(), 1, 'the relation graph is drawn');
  const history = await page.locator('section#history li').count();
  assert.ok(history > 0, `the history of ${unifiedId} lists its versions`);
  await screenshot(page, 'entity.png');
  out.entity = unifiedId;
  await ctx.close();
}

async function ops(browser) {
  const ctx = await context(browser, 'ops');
  const page = await ctx.newPage();
  lastPage = page;

  step('ops (client certificate): operations view');
  const shown = await page.goto(at('/operations'));
  assert.equal(shown?.status(), 200, `/operations answered ${shown?.status()} to ops`);
  assert.equal(await bodyView(page), 'operations');
  assert.equal((await page.textContent('#whoami'))?.trim(), 'ops');
  const totals = await page.locator('table#totals tbody tr').count();
  assert.ok(totals > 0, 'the totals table has a row per department');
  await page
    .waitForFunction(
      () =>
        document.querySelectorAll('#chart-records svg :is(rect, path, polyline, line, circle)').length > 0 &&
        (document.querySelector('#updated')?.textContent ?? '').trim() !== '',
      null,
      { timeout: WAIT_MS },
    )
    .catch(() => {
      throw new Error(`the charts were not drawn within ${WAIT_MS / 1000} s (#chart-records empty or #updated blank)`);
    });
  console.log(`  charts drawn; updated ${(await page.textContent('#updated')).trim()}`);
  await screenshot(page, 'operations.png');

  step(`ops: no personal data on the page nor in /operations/data.json (${personalValues.length} values)`);
  assert.ok(personalValues.length > 0, 'PERSONAL_VALUES lists something to look for');
  assertNoPersonalData(await page.content(), '/operations');
  const data = await page.evaluate(async () => {
    const response = await fetch('/operations/data.json?minutes=60', { headers: { Accept: 'application/json' } });
    return { status: response.status, text: await response.text() };
  });
  assert.equal(data.status, 200, `/operations/data.json answered ${data.status}: ${data.text}`);
  const parsed = JSON.parse(data.text);
  assert.ok(Array.isArray(parsed.departments) && parsed.departments.includes('tax'), `departments in ${data.text}`);
  assert.ok(Array.isArray(parsed.windows) && parsed.windows.length > 0, 'data.json has windows');
  // Both as sent and re-encoded: a \u escape would hide a name from the first check.
  assertNoPersonalData(data.text, '/operations/data.json');
  assertNoPersonalData(JSON.stringify(parsed), '/operations/data.json');

  step('ops: the review queue is refused');
  const refused = await page.goto(at('/review'));
  assert.equal(refused?.status(), 403, `/review answered ${refused?.status()} to ops`);
  assert.ok(await page.locator('main#refused').isVisible(), 'the refusal page shows main#refused');
  console.log(`  refused: ${(await page.textContent('main#refused')).trim().replace(/\s+/g, ' ')}`);
  await screenshot(page, 'ops-refused.png');

  step("ops: the tax department's quality view");
  const quality = await page.goto(at('/quality?department=tax'));
  assert.equal(quality?.status(), 200, `/quality answered ${quality?.status()} to ops`);
  assert.equal(await bodyView(page), 'quality');
  assert.ok(await page.locator('table#flag-counts').isVisible(), 'the quality view shows table#flag-counts');
  await screenshot(page, 'quality.png');
  await ctx.close();
}

async function strangers(browser) {
  step('no certificate, no session: /review is 401');
  const anonymous = await context(browser, null);
  const page = await anonymous.newPage();
  lastPage = page;
  const answer = await page.goto(at('/review'));
  assert.equal(answer?.status(), 401, `/review answered ${answer?.status()} to nobody`);
  await anonymous.close();

  step("tax's certificate: /operations is 403");
  const tax = await context(browser, 'tax');
  const taxPage = await tax.newPage();
  lastPage = taxPage;
  const refused = await taxPage.goto(at('/operations'));
  assert.equal(refused?.status(), 403, `/operations answered ${refused?.status()} to the tax department`);
  await tax.close();
}

let lastPage = null;

async function main() {
  fs.mkdirSync(screenshotDir, { recursive: true });
  fs.rmSync(path.join(screenshotDir, 'failure.png'), { force: true });
  const watchdog = setTimeout(() => {
    console.error(`console.mjs: FAILED: still running after ${RUN_MS / 1000} s, at: ${current}`);
    process.exit(1);
  }, RUN_MS);
  watchdog.unref();

  step(`launching ${executablePath}`);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const out = { decisions: [], entity: null, screenshots };
  try {
    await steward(browser, out);
    await ops(browser);
    await strangers(browser);
  } catch (error) {
    // What the page looked like when it failed, for whoever reads the error.
    if (lastPage && !lastPage.isClosed()) {
      const file = path.join(screenshotDir, 'failure.png');
      await lastPage
        .screenshot({ path: file, fullPage: true })
        .then(() => console.error(`console.mjs: the page at ${lastPage.url()} is in ${file}`))
        .catch(() => {});
    }
    throw error;
  } finally {
    await browser.close().catch(() => {});
  }
  fs.writeFileSync(outPath, `${JSON.stringify(out, null, 2)}\n`);
  step(`done: ${out.decisions.length} decisions, ${screenshots.length} screenshots, written to ${outPath}`);
}

main().catch((error) => {
  console.error(`console.mjs: FAILED at "${current}": ${error.message}`);
  process.exit(1);
});
