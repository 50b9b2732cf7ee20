// End-to-end tests of the web UI in headless Chromium, against a real `perdure server start-dev`
// and a real Python-SDK worker running the food-delivery order workflow. Every page visited is
// saved as a screenshot under target/ui-screenshots/.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, eventually, launchBrowser, newPage, shot, startServer, startWorker } from './harness.mjs';

const QUEUE = 'ui-tests';
let server, worker, browser, page, base;
const problems = [];

const ns = '/namespaces/default';
const start = (id, type, input, queue = QUEUE) =>
  api(base, 'POST', `${ns}/workflows/${encodeURIComponent(id)}`, { workflowType: { name: type }, taskQueue: { name: queue }, input, requestId: crypto.randomUUID() });
const describe = (id, runId) => api(base, 'GET', `${ns}/workflows/${encodeURIComponent(id)}${runId ? `?execution.runId=${runId}` : ''}`);
const statusOf = async (id) => (await describe(id)).workflowExecutionInfo.status;
const history = async (id, runId) => (await api(base, 'GET', `${ns}/workflows/${encodeURIComponent(id)}/history?execution.runId=${runId || ''}&maximumPageSize=1000`)).history.events;

before(async () => {
  server = await startServer();
  base = server.base;
  worker = await startWorker(server.grpc, QUEUE);
  browser = await launchBrowser();
  page = await newPage(browser, problems);
});

after(async () => {
  await browser?.close();
  worker?.kill();
  server?.stop();
  assert.deepEqual(problems, [], 'no script error and no dialog on any page');
});

test('/ redirects to the list, which shows a new workflow within a second without reloading', async () => {
  await page.goto(base + '/');
  assert.match(page.url(), /\/namespaces\/default\/workflows$/);
  await page.locator('#workflows tbody').waitFor();
  await page.locator('.count[data-status="All"]').waitFor();
  await page.evaluate(() => { window.__notReloaded = true; });
  const id = `live-${Date.now()}`;
  const t0 = Date.now();
  await start(id, 'order', [1]);
  await page.locator(`tr[data-workflow-id="${id}"]`).waitFor({ timeout: 1500 });
  const ms = Date.now() - t0;
  console.log(`new workflow listed ${ms} ms after its start`);
  assert.equal(await page.evaluate(() => window.__notReloaded), true, 'the page was not reloaded');
  await shot(page, 'workflows-list');
});

test('the workflow page shows the history and the pending activity with its failed attempt and next retry', async () => {
  const { runId } = await start('slow-order-1', 'slow_order', [5]);
  await eventually(async () => ((await describe('slow-order-1')).pendingActivities || [])[0]?.attempt >= 2, 30000, 'the second attempt');
  await page.goto(`${base}${ns}/workflows/slow-order-1/${runId}/pending-activities`);
  const card = page.locator('.pending-activity');
  await card.waitFor();
  const text = await card.innerText();
  assert.match(text, /flaky_payment/);
  assert.match(text, /Attempt\s+2 \(unlimited\)/);
  assert.match(text, /Next retry/);
  assert.match(text, /payment service unreachable/);
  await shot(page, 'workflow-pending-activities');
  await page.goto(`${base}${ns}/workflows/slow-order-1/${runId}/history`);
  await page.locator('.erow', { hasText: 'Activity flaky_payment' }).waitFor();
  await page.locator('.erow', { hasText: 'Activity flaky_payment' }).click();
  await page.locator('.event-detail h4', { hasText: 'ActivityTaskScheduled' }).waitFor();
  await shot(page, 'workflow-history-compact');
  await page.locator('button[data-mode="full"]').click();
  await page.locator('.erow[data-event-id="1"]').waitFor();
  await shot(page, 'workflow-history-full');
  await page.goto(`${base}${ns}/workflows/slow-order-1/${runId}/timeline`);
  await page.locator('.tl-row').first().waitFor();
  await shot(page, 'workflow-timeline');
});

test('the Queries tab lists getStatus and answers, also after the worker was killed and restarted', async () => {
  const { runId } = await start('order-q', 'order', [7]);
  await eventually(async () => (await history('order-q', runId)).some((e) => e.eventType === 'EVENT_TYPE_ACTIVITY_TASK_COMPLETED'), 20000, 'the charge');
  const ask = async () => {
    await page.goto(`${base}${ns}/workflows/order-q/${runId}/queries`);
    await page.locator('#query-type option[value="getStatus"]').waitFor({ state: 'attached' });
    await page.locator('#query-type').selectOption('getStatus');
    await page.locator('#query-form button[type="submit"]').click();
    await page.locator('#query-result pre').waitFor();
    return page.locator('#query-result pre').innerText();
  };
  assert.equal(await ask(), '"Paid"');
  await shot(page, 'workflow-queries');
  worker.kill();
  worker = await startWorker(server.grpc, QUEUE);
  assert.equal(await ask(), '"Paid"');

  // The signal form advances the workflow.
  await page.goto(`${base}${ns}/workflows/order-q/${runId}/history`);
  await page.locator('summary', { hasText: 'Signal' }).click();
  await page.locator('#signal-form input[name="name"]').fill('pickedUp');
  await page.locator('#signal-form button[type="submit"]').click();
  await eventually(async () => (await history('order-q', runId)).some((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED'), 10000, 'the signal');
  assert.equal(await ask(), '"Picked up"');

  // Terminate (with its confirmation) ends it.
  await page.goto(`${base}${ns}/workflows/order-q/${runId}/history`);
  await page.locator('summary', { hasText: 'Terminate' }).click();
  await page.locator('#terminate-form input[name="reason"]').fill('ui test');
  await page.locator('#terminate-form button[type="submit"]').click();
  assert.equal(await statusOf('order-q'), 'WORKFLOW_EXECUTION_STATUS_RUNNING', 'not without the confirmation box');
  await page.locator('#terminate-form input[name="confirm"]').check();
  await page.locator('#terminate-form button[type="submit"]').click();
  await eventually(async () => (await statusOf('order-q')) === 'WORKFLOW_EXECUTION_STATUS_TERMINATED', 10000, 'terminated');
  await page.locator('.title-row .badge', { hasText: 'Terminated' }).waitFor();
  await shot(page, 'workflow-terminated');
});

test('a workflow started from the UI runs; its result is shown as text, never as HTML', async () => {
  await page.goto(`${base}${ns}/workflows`);
  await page.locator('summary', { hasText: 'Start a workflow' }).click();
  await page.locator('#start-form input[name="type"]').fill('xss');
  await page.locator('#start-form input[name="id"]').fill('xss-from-ui');
  await page.locator('#start-form input[name="taskQueue"]').fill(QUEUE);
  await page.locator('#start-form textarea[name="input"]').fill('"<script>alert(1)</script><img src=x onerror=alert(3)>"');
  await page.locator('#start-form button[type="submit"]').click();
  await page.locator('#start-form a', { hasText: 'xss-from-ui' }).click();
  await eventually(async () => (await statusOf('xss-from-ui')) === 'WORKFLOW_EXECUTION_STATUS_COMPLETED', 20000, 'completion');
  await page.reload();
  const outcome = page.locator('#outcome pre');
  await outcome.waitFor();
  assert.equal(await outcome.innerText(), '"<script>alert(1)</script><img src=x onerror=alert(3)>"');
  assert.equal(await page.locator('main img').count(), 0, 'no element was made from the payload');
  // A query answer is text too.
  const url = new URL(page.url());
  await page.goto(`${url.origin}${url.pathname.replace(/\/history$/, '/queries')}`);
  await page.locator('#query-type option[value="echo"]').waitFor({ state: 'attached' });
  await page.locator('#query-type').selectOption('echo');
  await page.locator('#query-form button[type="submit"]').click();
  await page.locator('#query-result pre').waitFor();
  assert.equal(await page.locator('#query-result pre').innerText(), '"<img src=x onerror=alert(2)>"');
  await shot(page, 'workflow-xss-as-text');
});

test('the summary and details a client attached to a workflow are shown, as text', async () => {
  const id = `summary-${Date.now()}`;
  const { runId } = await api(base, 'POST', `${ns}/workflows/${encodeURIComponent(id)}`, {
    workflowType: { name: 'nobody-runs-this' },
    taskQueue: { name: 'no-worker' },
    requestId: crypto.randomUUID(),
    userMetadata: { summary: 'Ship order 7 <b>fast</b>', details: 'line one\nline two <img src=x onerror=alert(4)>' },
  });
  await page.goto(`${base}${ns}/workflows/${encodeURIComponent(id)}/${runId}/history`);
  const summaryRow = page.locator('dl.kv dt', { hasText: 'Summary' });
  await summaryRow.waitFor();
  const dd = (name) => page.locator('dl.kv dt', { hasText: name }).locator('xpath=following-sibling::dd[1]');
  assert.equal(await dd('Summary').innerText(), 'Ship order 7 <b>fast</b>');
  assert.equal(await dd('Details').innerText(), 'line one\nline two <img src=x onerror=alert(4)>');
  assert.equal(await page.locator('main img, main b').count(), 0, 'no element was made from the metadata');
  await shot(page, 'workflow-summary-details');
  await api(base, 'POST', `${ns}/workflows/${encodeURIComponent(id)}/terminate`, { reason: 'test done' });
});

test('reset re-runs the workflow from the chosen workflow task', async () => {
  const { runId } = await start('reset-me', 'xss', ['first']);
  await eventually(async () => (await statusOf('reset-me')) === 'WORKFLOW_EXECUTION_STATUS_COMPLETED', 20000, 'completion');
  await page.goto(`${base}${ns}/workflows/reset-me/${runId}/history`);
  await page.locator('summary', { hasText: 'Reset' }).click();
  await page.locator('#reset-event option').first().waitFor({ state: 'attached' });
  await page.locator('#reset-form input[name="confirm"]').check();
  await page.locator('#reset-form button[type="submit"]').click();
  await page.waitForURL((u) => u.pathname.includes('/reset-me/') && !u.pathname.includes(runId));
  const newRun = decodeURIComponent(new URL(page.url()).pathname.split('/')[5]);
  assert.notEqual(newRun, runId);
  await eventually(async () => (await describe('reset-me', newRun)).workflowExecutionInfo.status === 'WORKFLOW_EXECUTION_STATUS_COMPLETED', 20000, 'the new run completes');
  const events = await history('reset-me', newRun);
  const failed = events.find((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_FAILED');
  assert.equal(failed.workflowTaskFailedEventAttributes.cause, 'WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW');
  await page.reload();
  await page.locator('.title-row .badge', { hasText: 'Completed' }).waitFor();
  await shot(page, 'workflow-after-reset');
});

test('a batch terminate by query ends exactly the matching workflows', async () => {
  const idle = 'nobody-polls-this';
  const prefix = `batch-${Date.now()}`;
  for (let i = 0; i < 3; i++) await start(`${prefix}-hit-${i}`, 'order', [i], idle);
  for (let i = 0; i < 2; i++) await start(`${prefix}-miss-${i}`, 'order', [i], idle);
  const query = `WorkflowId STARTS_WITH '${prefix}-hit'`;
  await page.goto(`${base}${ns}/workflows?query=${encodeURIComponent(query)}`);
  await page.locator('summary', { hasText: 'Batch' }).click();
  assert.equal(await page.locator('#batch-form input[name="query"]').inputValue(), query);
  await page.locator('#batch-form button[type="submit"]').click();
  const confirm = page.locator('#batch-confirm');
  await confirm.waitFor();
  assert.equal(await confirm.innerText(), 'terminate 3 workflows');
  await confirm.click();
  await page.locator('#batch-status[data-state="COMPLETED"]').waitFor({ timeout: 30000 });
  await shot(page, 'workflows-batch-terminate');
  for (let i = 0; i < 3; i++) assert.equal(await statusOf(`${prefix}-hit-${i}`), 'WORKFLOW_EXECUTION_STATUS_TERMINATED');
  for (let i = 0; i < 2; i++) assert.equal(await statusOf(`${prefix}-miss-${i}`), 'WORKFLOW_EXECUTION_STATUS_RUNNING');
  for (let i = 0; i < 2; i++) await api(base, 'POST', `${ns}/workflows/${prefix}-miss-${i}/terminate`, {});
});

test('a 20,000-event history opens and scrolls', async () => {
  const { runId } = await start('long-history', 'many_events', [10000]);
  await eventually(async () => (await statusOf('long-history')) === 'WORKFLOW_EXECUTION_STATUS_COMPLETED', 120000, 'the long workflow');
  const t0 = Date.now();
  await page.goto(`${base}${ns}/workflows/long-history/${runId}/history?view=full`);
  await page.locator('.erow[data-event-id="1"]').waitFor();
  const firstRows = Date.now() - t0;
  await page.locator('button[data-mode="full"]', { hasText: 'All events (20010)' }).waitFor({ timeout: 60000 });
  const all = Date.now() - t0;
  console.log(`20,010 events: first rows after ${firstRows} ms, all loaded after ${all} ms`);
  assert.ok(await page.locator('.vrow').count() < 200, 'only the rows in view are in the page');
  for (const target of [5000, 12000, 20010]) {
    await page.locator('.vlist').evaluate((b, n) => { b.scrollTop = (n - 5) * 30; }, target);
    await page.locator(`.erow[data-event-id="${target}"]`).waitFor();
  }
  await page.locator('.erow[data-event-id="20010"]').click();
  await page.locator('.event-detail h3', { hasText: '20010' }).waitFor();
  await shot(page, 'workflow-long-history');
});

test('bad input gets a clear message on the page, never a blank page', async () => {
  await page.goto(`${base}/namespaces/no-such-namespace/workflows`);
  await page.locator('.error', { hasText: 'no-such-namespace' }).waitFor();
  await shot(page, 'error-unknown-namespace');

  await page.goto(`${base}${ns}/workflows/no-such-workflow`);
  await page.locator('.error', { hasText: 'not found' }).waitFor();
  await shot(page, 'error-unknown-workflow');

  await page.goto(`${base}${ns}/workflows?query=${encodeURIComponent('WorkflowType = ')}`);
  await page.locator('.error', { hasText: 'Invalid query' }).waitFor();
  await shot(page, 'error-bad-query');

  const res = await page.goto(`${base}/no/such/page`);
  assert.equal(res.status(), 404);
  await page.locator('h1', { hasText: 'Not found' }).waitFor();

  const { runId } = await start('bad-input', 'order', [1], 'nobody-polls-this');
  await page.goto(`${base}${ns}/workflows/bad-input/${runId}/history`);
  await page.locator('summary', { hasText: 'Signal' }).click();
  await page.locator('#signal-form input[name="name"]').fill('pickedUp');
  await page.locator('#signal-form textarea[name="input"]').fill('{not json');
  await page.locator('#signal-form button[type="submit"]').click();
  await page.locator('.error', { hasText: 'not valid JSON' }).waitFor();
  assert.ok(!(await history('bad-input', runId)).some((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED'), 'nothing was sent');
  await shot(page, 'error-invalid-json');

  // No worker on its queue: the Queries tab says so at once.
  await page.goto(`${base}${ns}/workflows/bad-input/${runId}/queries`);
  await page.locator('#no-worker', { hasText: 'No worker is polling task queue nobody-polls-this' }).waitFor();
  // An unknown query type: the worker's error, on the page.
  const known = await start('bad-query', 'order', [1]);
  await page.goto(`${base}${ns}/workflows/bad-query/${known.runId}/queries`);
  await page.locator('#query-type option[value="getStatus"]').waitFor({ state: 'attached' });
  await page.locator('#query-form input[name="freeName"]').fill('noSuchQuery');
  await page.locator('#query-form button[type="submit"]').click();
  await page.locator('#query-result .error', { hasText: 'noSuchQuery' }).waitFor();
  await shot(page, 'error-unknown-query');
  await api(base, 'POST', `${ns}/workflows/bad-query/terminate`, {});
  await api(base, 'POST', `${ns}/workflows/bad-input/terminate`, {});
});

test('namespaces and task queue pages', async () => {
  await page.goto(`${base}/namespaces`);
  await page.locator('td a', { hasText: 'default' }).waitFor();
  await shot(page, 'namespaces');
  await page.goto(`${base}${ns}/task-queues/${QUEUE}`);
  await page.locator('h2', { hasText: 'Workflow pollers' }).waitFor();
  await eventually(async () => (await page.locator('table.grid tbody tr').count()) > 0, 10000, 'pollers');
  await shot(page, 'task-queue');
});

test('state changes from another site are refused; pages forbid inline script', async () => {
  const res = await fetch(`${base}/api/v1${ns}/workflows/csrf-${Date.now()}`, {
    method: 'POST', headers: { Origin: 'http://evil.example', 'Content-Type': 'text/plain' },
    body: JSON.stringify({ workflowType: { name: 'x' }, taskQueue: { name: 'x' } }),
  });
  assert.equal(res.status, 403);
  const page = await fetch(`${base}${ns}/workflows`);
  assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
});
