// Web UI benchmark: p50 (and p90) over LOADS page loads in headless Debian Chromium of
//   - the workflows list: time to first byte, and to the first rows rendered;
//   - a filtered list (WorkflowType = 'bench-a');
//   - the 20,000-event history `bench-long-history`: first rows, and every event loaded;
// and the server's CPU per list refresh (the list page's two API calls, list + count by status),
// read from /proc/PID/stat around REFRESHES refreshes.
//
// usage: node ui_bench.mjs perdure UI_URL SERVER_PID
//        node ui_bench.mjs temporal UI_URL SERVER_PID HTTP_API_URL
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(path.resolve(import.meta.dirname, '../../tests/ui/package.json'));
const { chromium } = require('playwright-core');
const [kind, ui, pid, httpApi] = process.argv.slice(2);
const LOADS = Number(process.env.LOADS || 20);
const REFRESHES = Number(process.env.REFRESHES || 200);
const api = kind === 'temporal' ? httpApi : `${ui}/api/v1`;

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(0)} ms, p90 ${pct(xs, 90).toFixed(0)} ms`;
function cpuMs() {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, 100 ticks per second
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });

const long = (await (await fetch(`${api}/namespaces/default/workflows/bench-long-history`)).json()).workflowExecutionInfo;
const run = long.execution.runId;
const events = String(long.historyLength);

async function measure(label, url, ready) {
  const ttfb = [], rendered = [];
  for (let i = 0; i < LOADS; i++) {
    const t0 = Date.now();
    await page.goto(url, { waitUntil: 'commit' });
    await ready();
    rendered.push(Date.now() - t0);
    ttfb.push(await page.evaluate(() => { const n = performance.getEntriesByType('navigation')[0]; return n.responseStart - n.startTime; }));
  }
  console.log(`${kind} ${label}: first byte ${fmt(ttfb)}; rendered ${fmt(rendered)}`);
}

const list = `${ui}/namespaces/default/workflows`;
const filtered = kind === 'temporal'
  ? `${list}?query=${encodeURIComponent("WorkflowType = 'bench-a'")}`
  : `${list}?type=bench-a`;
const history = kind === 'temporal'
  ? `${ui}/namespaces/default/workflows/bench-long-history/${run}/history`
  : `${ui}/namespaces/default/workflows/bench-long-history/${run}/history?view=full`;
// Rendered = the text is in what the page shows (works for both UIs, whatever their markup).
const text = (re) => () => page.waitForFunction((src) => new RegExp(src).test(document.body.innerText), re.source, { timeout: 120000 });
const anyRow = /bench-\d+/;

await measure('list of 100,000', list, text(anyRow));
await measure("filtered list (WorkflowType = 'bench-a')", filtered, text(anyRow));
if (kind === 'temporal') {
  await measure(`${events}-event history (newest events shown)`, history, text(new RegExp(`\\b${events}\\b`)));
} else {
  await measure(`${events}-event history (first rows)`, history, () => page.locator('.erow[data-event-id="1"]').waitFor());
  await measure(`${events}-event history (all events loaded)`, history, () => page.locator('button[data-mode="full"]', { hasText: `All events (${events})` }).waitFor({ timeout: 120000 }));
}
await browser.close();

const listCall = `${api}/namespaces/default/workflows?pageSize=50&query=`;
const countCall = `${api}/namespaces/default/workflow-count?query=${encodeURIComponent('GROUP BY ExecutionStatus')}`;
const before = cpuMs();
const t0 = Date.now();
for (let i = 0; i < REFRESHES; i++) {
  await (await fetch(listCall)).arrayBuffer();
  await (await fetch(countCall)).arrayBuffer();
}
const spent = cpuMs() - before;
console.log(`${kind} list refresh (list page 1 + counts by status): server CPU ${(spent / REFRESHES).toFixed(2)} ms per refresh, ${((Date.now() - t0) / REFRESHES).toFixed(1)} ms wall, over ${REFRESHES}`);
