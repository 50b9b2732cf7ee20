// Harness for the web UI tests: a real `perdure server start-dev` (SQLite file in a temp dir) on
// free ports, a real Python-SDK worker (worker.py), and headless Debian Chromium driven by
// playwright-core. Screenshots go to target/ui-screenshots/.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const SHOTS = path.join(REPO, 'target', 'ui-screenshots');
const BIN = process.env.PERDURE_BIN || path.join(REPO, 'target', 'debug', 'perdure');
const PYTHON = process.env.PERDURE_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value (or throws the last error after `ms`). */
export async function eventually(fn, ms = 20000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function killTree(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  try { process.kill(-proc.pid, 'SIGKILL'); } catch { try { proc.kill('SIGKILL'); } catch { /* gone */ } }
}

const children = new Set();
process.on('exit', () => { for (const c of children) killTree(c); });

/** Starts the server; returns its addresses and a `stop()`. */
export async function startServer() {
  const grpc = await freePort();
  const ui = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perdure-ui-'));
  const proc = spawn(BIN, ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(grpc), '--ui-port', String(ui),
    '--db-filename', path.join(dir, 'perdure.db'), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  children.add(proc);
  const base = `http://127.0.0.1:${ui}`;
  await eventually(async () => (await fetch(`${base}/api/v1/namespaces`)).ok, 30000, 'the server');
  return { grpc: `127.0.0.1:${grpc}`, base, stop: () => { killTree(proc); fs.rmSync(dir, { recursive: true, force: true }); } };
}

/** Starts the Python worker (order, slow_order, xss, many_events) on `queue`; resolves when it polls. */
export async function startWorker(grpc, queue) {
  const proc = spawn(PYTHON, [path.join(REPO, 'tests', 'ui', 'worker.py'), grpc, queue], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.add(proc);
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`worker did not start:\n${log}`)), 60000);
    proc.stdout.on('data', (d) => { if (String(d).includes('worker ready')) { clearTimeout(t); resolve(); } });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`worker exited (${c}):\n${log}`)); });
  });
  return { kill: () => killTree(proc) };
}

/** Headless Chromium from Debian's package (never a downloaded browser). */
export async function launchBrowser() {
  fs.mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** A page that fails the test on a script error or any dialog (an XSS would open one). */
export async function newPage(browser, problems) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', async (d) => {
    if (page.expectDialog) { page.expectDialog = false; await d.accept(); return; }
    problems.push(`unexpected dialog: ${d.type()} ${d.message()}`);
    await d.dismiss();
  });
  return page;
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** One call to the HTTP API (no Origin header: a non-browser client, like curl). */
export async function api(base, method, p, body, headers = {}) {
  const res = await fetch(`${base}/api/v1${p}`, {
    method, headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : {};
  if (!res.ok) { const e = new Error(`${res.status} ${json.message}`); e.status = res.status; e.body = json; throw e; }
  return json;
}
