// The food-delivery app end to end (examples/food-delivery): the real `food-delivery` binary with
// its embedded Perdure server, its Rust worker (in-process or as its own process), or the
// TypeScript worker on the official SDK; the menu and the driver portal in headless Chromium.
// Processes are SIGKILLed mid-order to show that nothing is lost. Screenshots go to
// target/ui-screenshots/food-delivery-*.png.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO, SHOTS, eventually, freePort, launchBrowser, sleep } from './harness.mjs';

const BIN = process.env.FOOD_DELIVERY_BIN || path.join(REPO, 'target', 'debug', 'food-delivery');
const TS_WORKER = path.join(REPO, 'examples', 'food-delivery', 'ts', 'build', 'ts', 'src', 'worker.js');

const children = new Set();
function kill(proc, signal = 'SIGKILL') {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  try { process.kill(-proc.pid, signal); } catch { try { proc.kill(signal); } catch { /* gone */ } }
}
process.on('exit', () => { for (const c of children) kill(c); });

/** Spawns a process in its own group; resolves once its stdout shows `ready`. */
async function launch(cmd, args, ready, what) {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(proc);
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not start:\n${out}`)), 60000);
    const check = () => { if (out.includes(ready)) { clearTimeout(t); resolve(); } };
    proc.stdout.on('data', check);
    proc.on('exit', (c, s) => { clearTimeout(t); reject(new Error(`${what} exited (${c ?? s}):\n${out}`)); });
  });
  proc.removeAllListeners('exit');
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return { proc, exited, log: () => out };
}

/** Ports and a database that survive restarts of the app. */
async function appEnv() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perdure-fd-'));
  return {
    dir,
    db: path.join(dir, 'food-delivery.db'),
    grpc: await freePort(), ui: await freePort(), menu: await freePort(), driver: await freePort(),
  };
}

/** Starts `food-delivery` with its embedded server (unless `embedded` is false). */
async function startApp(env, extra = [], { embedded = true } = {}) {
  const args = [
    ...(embedded ? ['--embedded-server', '--db', env.db, '--ui-port', String(env.ui)] : ['--ui-url', `http://127.0.0.1:${env.ui}`]),
    '--address', `127.0.0.1:${env.grpc}`, '--menu-port', String(env.menu), '--driver-port', String(env.driver),
    '--log-level', 'warn', ...extra,
  ];
  const p = await launch(BIN, args, 'Press Ctrl-C to stop.', 'food-delivery');
  const app = {
    ...p,
    menu: `http://127.0.0.1:${env.menu}`,
    driver: `http://127.0.0.1:${env.driver}`,
    ui: `http://127.0.0.1:${env.ui}`,
    grpc: `127.0.0.1:${env.grpc}`,
    kill: () => kill(p.proc),
  };
  await eventually(async () => (await fetch(app.menu)).ok, 20000, 'the menu');
  return app;
}

async function startRustWorker(app, extra = []) {
  const p = await launch(BIN, ['worker', '--address', app.grpc, '--log-level', 'warn', ...extra], 'worker ready', 'the Rust worker');
  return { ...p, kill: () => kill(p.proc) };
}

async function startTsWorker(app) {
  assert.ok(fs.existsSync(TS_WORKER), `build the TypeScript worker first: cd examples/food-delivery/ts && npm ci && npm run build (${TS_WORKER})`);
  const p = await launch(process.execPath, [TS_WORKER, '--address', app.grpc], 'worker ready', 'the TypeScript worker');
  return { ...p, kill: () => kill(p.proc) };
}

/** A fresh order id, as the menu page hands them out. */
async function orderId(app) {
  const html = await (await fetch(app.menu)).text();
  return html.match(/name="order_id" value="(order-[0-9a-z]+)"/)[1];
}

/** Places an order the way the page's script does. */
async function placeOrder(app, productId, id) {
  id ??= await orderId(app);
  const r = await post(`${app.menu}/orders`, { product_id: productId, order_id: id });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return id;
}

async function post(url, form = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(Object.entries(form).map(([k, v]) => [k, String(v)])),
  });
  return { status: res.status, body: await res.json() };
}

/** The state the order page shows (server-rendered, so no browser is needed). */
async function pageState(app, id) {
  const html = await (await fetch(`${app.menu}/orders/${id}`)).text();
  return html.match(/data-state="([^"]+)"/)?.[1];
}

async function waitState(app, id, want, ms = 30000) {
  await eventually(async () => (await pageState(app, id)) === want, ms, `order ${id} to be ${want}`);
}

/** The order's history through the embedded server's HTTP API. */
async function history(app, id) {
  const res = await fetch(`${app.ui}/api/v1/namespaces/default/workflows/${id}/history`);
  assert.equal(res.status, 200);
  return (await res.json()).history.events;
}

const scheduled = (events, name) => events.filter((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED'
  && e.activityTaskScheduledEventAttributes.activityType.name === name);

/** The charge failed once and the server's retry (attempt 2) charged the card. */
function assertRetriedCharge(events) {
  const charge = scheduled(events, 'chargeCustomer');
  assert.equal(charge.length, 1, 'one chargeCustomer activity');
  const started = events.find((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_STARTED'
    && e.activityTaskStartedEventAttributes.scheduledEventId === charge[0].eventId);
  assert.equal(started.activityTaskStartedEventAttributes.attempt, 2, 'charged on the second attempt');
  assert.match(started.activityTaskStartedEventAttributes.lastFailure.message, /Payment service unavailable/);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `food-delivery-${name}.png`), fullPage: true });
}

const badge = (root, id, state) => `${root} li[data-id="${id}"] .badge[data-state="${state}"]`;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); for (const c of children) kill(c); });

/** Flow 1 in the browser: order on the menu, pay after the failed first charge, pick up and
 *  deliver on the driver portal; both pages follow without reloads; the web UI shows the run. */
async function deliverInBrowser(app, prefix) {
  const problems = [];
  const menu = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const driver = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  for (const p of [menu, driver]) p.on('pageerror', (e) => problems.push(e.message));
  await menu.goto(app.menu);
  await driver.goto(app.driver);
  await menu.waitForSelector('#product-3 button');
  await shot(menu, `${prefix}1-menu`);

  const id = await menu.inputValue('#product-3 input[name=order_id]');
  await menu.click('#product-3 button');
  await menu.waitForSelector(`#orders li[data-id="${id}"]`, { timeout: 15000 });
  await menu.waitForSelector(badge('#orders', id, 'Paid'), { timeout: 30000 });
  await shot(menu, `${prefix}2-menu-paid`);

  const pickup = `#queue li[data-id="${id}"] button[name=pickup]`;
  const deliver = `#queue li[data-id="${id}"] button[name=deliver]`;
  await driver.waitForSelector(`${pickup}:not([disabled])`, { timeout: 15000 });
  assert.ok(await driver.isDisabled(deliver), 'Deliver is disabled until the order is picked up');
  await shot(driver, `${prefix}3-driver-paid`);
  await driver.click(pickup);
  await driver.waitForSelector(badge('#queue', id, 'Picked up'), { timeout: 15000 });
  await driver.waitForSelector(`${deliver}:not([disabled])`);
  assert.ok(await driver.isDisabled(pickup), 'Pick up is disabled once picked up');
  await menu.waitForSelector(badge('#orders', id, 'Picked up'), { timeout: 15000 });
  await shot(driver, `${prefix}4-driver-picked-up`);
  await driver.click(deliver);
  await driver.waitForSelector(badge('#queue', id, 'Delivered'), { timeout: 15000 });
  await menu.waitForSelector(badge('#orders', id, 'Delivered'), { timeout: 15000 });
  await shot(driver, `${prefix}5-driver-delivered`);
  await shot(menu, `${prefix}6-menu-delivered`);

  // The order's own page, then its workflow in the Perdure web UI (the menu links to it).
  await menu.click(`#orders li[data-id="${id}"] a[href^="/orders/"]`);
  await menu.waitForSelector('#detail .badge[data-state="Delivered"]');
  assert.equal(await menu.locator('.steps li.done').count(), 4);
  await shot(menu, `${prefix}7-order-page`);
  const href = await menu.getAttribute('#detail a.out', 'href');
  assert.ok(href.startsWith(`${app.ui}/namespaces/default/workflows/${id}/`), href);
  const ui = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await ui.goto(href);
  await ui.waitForFunction(() => document.body.innerText.includes('Completed'), null, { timeout: 15000 });
  // The compact history shows the charge completed on its second attempt (the server's retry).
  await ui.waitForFunction(() => [...document.querySelectorAll('.erow')]
    .some((r) => r.innerText.includes('chargeCustomer') && r.innerText.includes('Completed (attempt 2)')), null, { timeout: 15000 });
  await ui.locator('.erow', { hasText: 'chargeCustomer' }).first().click();
  await ui.waitForFunction(() => document.body.innerText.includes('Payment service unavailable'), null, { timeout: 10000 });
  await shot(ui, `${prefix}8-web-ui`);

  const events = await history(app, id);
  assertRetriedCharge(events);
  assert.equal(events.at(-1).eventType, 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
  assert.deepEqual(problems, []);
  for (const p of [menu, driver, ui]) await p.close();
  return id;
}

/** Flow 4: nobody picks the order up within the (shortened) timeout: refunded, exactly once. */
async function refundFlow(app, prefix) {
  const id = await placeOrder(app, 4);
  await waitState(app, id, 'Refunded', 40000);
  const events = await eventually(async () => {
    const ev = await history(app, id);
    return ev.at(-1).eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_FAILED' && ev;
  }, 15000, 'the run to close');
  const refund = scheduled(events, 'refundOrder');
  assert.equal(refund.length, 1, 'refundOrder scheduled once');
  const refundStarted = events.filter((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_STARTED'
    && e.activityTaskStartedEventAttributes.scheduledEventId === refund[0].eventId);
  assert.equal(refundStarted.length, 1);
  assert.equal(refundStarted[0].activityTaskStartedEventAttributes.attempt, 1, 'the refund ran on its first attempt');
  // Paid first, then the pickup timer fired, then the refund.
  const fired = events.findIndex((e) => e.eventType === 'EVENT_TYPE_TIMER_FIRED');
  assert.ok(fired > 0 && fired < events.indexOf(refund[0]));
  assert.equal(events.filter((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED'
    && e.activityTaskCompletedEventAttributes.scheduledEventId === scheduled(events, 'refundOrder')[0].eventId).length, 1);
  assert.equal(events.at(-1).workflowExecutionFailedEventAttributes.failure.message, 'Not picked up in time');
  assertRetriedCharge(events);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${app.menu}/orders/${id}`);
  await page.waitForSelector('#detail .badge[data-state="Refunded"]');
  await shot(page, `${prefix}refunded`);
  await page.close();
}

describe('food-delivery with the Rust worker', () => {
  test('order, retried charge, pick up, deliver: both apps live, then the web UI shows the run', async () => {
    const env = await appEnv();
    const app = await startApp(env);
    try {
      await deliverInBrowser(app, 'rust-');
      // Phone width.
      for (const [name, url] of [['menu', app.menu], ['driver', app.driver]]) {
        const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
        await page.goto(url);
        await page.waitForSelector('.badge');
        await shot(page, `phone-${name}`);
        await page.close();
      }
      // Ctrl-C stops everything cleanly, and the next run shows the earlier order.
      kill(app.proc, 'SIGINT');
      const { code } = await Promise.race([app.exited, sleep(30000).then(() => ({ code: 'still running' }))]);
      assert.equal(code, 0, app.log());
      const again = await startApp(env);
      await eventually(async () => (await (await fetch(again.menu)).text()).includes('data-state="Delivered"'), 15000, 'the earlier order');
      again.kill();
    } finally { app.kill(); }
  });

  test('no pickup within the timeout: refunded, and the refund ran exactly once', async () => {
    const app = await startApp(await appEnv(), ['--timeout', '6']);
    try { await refundFlow(app, 'rust-'); } finally { app.kill(); }
  });

  test('the worker SIGKILLed between "Picked up" and "Delivered": the order completes, the status comes by replay', async () => {
    const app = await startApp(await appEnv(), ['--no-worker']);
    let worker = await startRustWorker(app);
    try {
      const id = await placeOrder(app, 6);
      await waitState(app, id, 'Paid');
      assert.equal((await post(`${app.driver}/orders/${id}/pickup`)).status, 200);
      await waitState(app, id, 'Picked up');
      worker.kill();
      await worker.exited;
      // The pages say that no worker answers (the last known state stays).
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(app.menu);
      await page.waitForSelector('#no-worker', { timeout: 20000 });
      assert.match(await page.textContent('#no-worker'), /task queue food-delivery/);
      await shot(page, 'rust-no-worker');
      // The driver delivers while no worker runs: the signal waits on the server.
      const d = await post(`${app.driver}/orders/${id}/deliver`);
      assert.equal(d.status, 200, JSON.stringify(d.body));
      worker = await startRustWorker(app);
      await waitState(app, id, 'Delivered', 40000);
      await page.waitForSelector(badge('#orders', id, 'Delivered'), { timeout: 15000 });
      await eventually(async () => !(await page.$('#no-worker')), 15000, 'the banner to go');
      await shot(page, 'rust-after-worker-restart');
      await page.close();
      const events = await history(app, id);
      assert.equal(events.at(-1).eventType, 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
      // A query of the closed run is answered by replaying its whole history on the new worker.
      const q = await fetch(`${app.ui}/api/v1/namespaces/default/workflows/${id}/query/getStatus`, { method: 'POST', body: '{}' });
      const body = await q.json();
      assert.equal(q.status, 200, JSON.stringify(body));
      const answer = Array.isArray(body.queryResult) ? body.queryResult[0] : body.queryResult;
      assert.equal(answer.state, 'Delivered', JSON.stringify(body));
      assert.match(answer.deliveredAt, /Z$/);
    } finally { worker.kill(); app.kill(); }
  });

  test('the whole app SIGKILLed with ten orders in flight: all are listed again and can be finished', async () => {
    const env = await appEnv();
    // Long timeouts: every order must wait for its driver across the kill and the restart.
    let app = await startApp(env, ['--timeout', '300']);
    const ids = [];
    try {
      for (let i = 0; i < 10; i++) ids.push(await placeOrder(app, (i % 8) + 1));
      for (const id of ids) await waitState(app, id, 'Paid');
      for (const id of ids.slice(0, 5)) assert.equal((await post(`${app.driver}/orders/${id}/pickup`)).status, 200);
      for (const id of ids.slice(0, 5)) await waitState(app, id, 'Picked up');
      app.kill();
      await app.exited;
      app = await startApp(env, ['--timeout', '300']);
      const listed = async () => {
        const html = await (await fetch(app.menu)).text();
        return ids.every((id) => html.includes(`data-id="${id}"`));
      };
      await eventually(listed, 20000, 'all ten orders listed after the restart');
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      await page.goto(app.driver);
      for (const id of ids) await page.waitForSelector(`#queue li[data-id="${id}"]`, { timeout: 15000 });
      await shot(page, 'rust-after-app-kill');
      for (const id of ids.slice(5)) assert.equal((await post(`${app.driver}/orders/${id}/pickup`)).status, 200);
      for (const id of ids.slice(5)) await waitState(app, id, 'Picked up');
      for (const id of ids) {
        const r = await post(`${app.driver}/orders/${id}/deliver`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      for (const id of ids) await waitState(app, id, 'Delivered');
      // Every order, a page at a time, from the server's visibility list.
      const all = await (await fetch(`${app.menu}/orders`)).text();
      for (const id of ids) assert.ok(all.includes(`data-id="${id}"`), id);
      assert.equal((await fetch(`${app.menu}/orders?page=zz`)).status, 400);
      await page.close();
    } finally { app.kill(); }
  });

  test('errors a user can meet are on the page: server unreachable, unknown order, wrong step', async () => {
    // No server at the address.
    const env = await appEnv();
    const down = await startApp(env, [], { embedded: false });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(down.menu);
      await page.waitForSelector('#server-down', { timeout: 15000 });
      assert.match(await page.textContent('#server-down'), new RegExp(`Cannot reach the Perdure server at 127.0.0.1:${env.grpc}`));
      await page.click('#product-1 button');
      await page.waitForSelector('#product-1 .flash.error:not([hidden])');
      assert.match(await page.textContent('#product-1 .flash'), /Cannot reach the Perdure server/);
      await shot(page, 'server-unreachable');
      await page.close();
    } finally { down.kill(); }

    const app = await startApp(await appEnv());
    try {
      const res = await fetch(`${app.menu}/orders/order-doesnotexist`);
      const text = await res.text();
      assert.equal(res.status, 404, text);
      assert.match(text, /There is no order with id order-doesnotexist/);
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`${app.menu}/orders/order-doesnotexist`);
      await shot(page, 'unknown-order');
      await page.close();
      const missing = await post(`${app.driver}/orders/order-doesnotexist/pickup`);
      assert.equal(missing.status, 404);
      // Delivering before the pickup is refused with the reason.
      const id = await placeOrder(app, 2);
      await waitState(app, id, 'Paid');
      const early = await post(`${app.driver}/orders/${id}/deliver`);
      assert.equal(early.status, 409);
      assert.match(early.body.error, /is paid: it cannot be delivered now/);
      // Bad input and cross-site posts.
      assert.equal((await post(`${app.menu}/orders`, { product_id: 99, order_id: 'order-x1' })).status, 400);
      assert.equal((await post(`${app.menu}/orders`, { product_id: 1, order_id: '<b>' })).status, 400);
      const cross = await fetch(`${app.menu}/orders`, {
        method: 'POST', headers: { Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'product_id=1&order_id=order-cross',
      });
      assert.equal(cross.status, 403);
      // The same order id twice is one order (the id makes the start idempotent).
      const twice = await orderId(app);
      await placeOrder(app, 5, twice);
      await placeOrder(app, 5, twice);
      const list = await (await fetch(`${app.ui}/api/v1/namespaces/default/workflows?query=${encodeURIComponent(`WorkflowId = '${twice}'`)}`)).json();
      assert.equal(list.executions.length, 1);
    } finally { app.kill(); }
  });
});

describe('food-delivery with the TypeScript worker (official SDK)', () => {
  test('order, retried charge, pick up, deliver', async () => {
    const app = await startApp(await appEnv(), ['--worker', 'ts']);
    const worker = await startTsWorker(app);
    try {
      const id = await deliverInBrowser(app, 'ts-');
      const events = await history(app, id);
      assert.equal(events[0].workflowExecutionStartedEventAttributes.taskQueue.name, 'food-delivery-ts');
    } finally { worker.kill(); app.kill(); }
  });

  test('no pickup within the timeout: refunded exactly once', async () => {
    const app = await startApp(await appEnv(), ['--worker', 'ts', '--timeout', '6']);
    const worker = await startTsWorker(app);
    try { await refundFlow(app, 'ts-'); } finally { worker.kill(); app.kill(); }
  });
});
