// Test harness: starts the server under test on a free port (one per test file), connects a
// Client (grpc-js) and a NativeConnection (core, for workers), bundles the workflows once per
// process, and offers small helpers (bounded polling, history event names, worker lifetimes).
//
// PERDURE_TEST_TARGET=perdure (default): `$PERDURE_BIN server start-dev ...`
//   (PERDURE_BIN defaults to <repo>/target/debug/perdure).
// PERDURE_TEST_TARGET=temporal: Temporal's own dev server (`temporal server start-dev ...`,
//   TEMPORAL_BIN defaults to `temporal` on PATH), to check the tests themselves.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import {
  bundleWorkflowCode,
  DefaultLogger,
  LogLevel,
  makeTelemetryFilterString,
  NativeConnection,
  Runtime,
  Worker,
  WorkerOptions,
  WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import * as activities from '../src/activities';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..'); // tests/ts/build/test -> repo
export const TARGET = (process.env.PERDURE_TEST_TARGET ?? 'perdure').toLowerCase();
if (TARGET !== 'perdure' && TARGET !== 'temporal') {
  throw new Error(`PERDURE_TEST_TARGET must be 'perdure' or 'temporal', got '${TARGET}'`);
}

export interface TestEnv {
  target: string;
  address: string;
  client: Client;
  connection: NativeConnection;
  bundle: WorkflowBundleWithSourceMap;
  /** The command line the server was started with. */
  command: string[];
  logFile: string;
}

let envPromise: Promise<TestEnv> | undefined;
let server: ChildProcess | undefined;
let tmpDir: string | undefined;
let env: TestEnv | undefined;
const runningWorkers = new Set<Worker>();

function killServer(): void {
  if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
    try {
      process.kill(-server.pid, 'SIGKILL'); // the whole process group
    } catch {
      try {
        server.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
process.on('exit', killServer);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function tcpReachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => {
      c.end();
      resolve(true);
    });
    c.on('error', () => resolve(false));
    c.setTimeout(1000, () => {
      c.destroy();
      resolve(false);
    });
  });
}

function logTail(): string {
  if (!env?.logFile && !tmpDir) return '';
  try {
    const text = fs.readFileSync(env?.logFile ?? path.join(tmpDir!, 'server.log'), 'utf8');
    return text.split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
}

async function serverCommand(port: number, dir: string): Promise<string[]> {
  if (TARGET === 'temporal') {
    const bin = process.env.TEMPORAL_BIN ?? 'temporal';
    return [
      bin, 'server', 'start-dev', '--headless',
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--http-port', String(await freePort()),
      '--metrics-port', String(await freePort()),
      '--db-filename', path.join(dir, 't.db'),
      '--log-level', 'error',
    ];
  }
  const bin = process.env.PERDURE_BIN ?? path.join(REPO_ROOT, 'target', 'debug', 'perdure');
  const pg = process.env.PERDURE_TEST_POSTGRES_URL;
  if (pg) {
    // scripts/with-postgres: `server start` on PostgreSQL, tables in a schema of this server's
    // own (named after its directory, so a restart finds its state).
    const schema = 't_' + createHash('sha1').update(dir).digest('hex').slice(0, 16);
    return [
      bin, 'server', 'start',
      '--persistence-url', `${pg}?schema=${schema}`,
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--headless',
      '--log-level', 'warn',
    ];
  }
  return [
    bin, 'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--db-filename', path.join(dir, 'perdure.db'),
    '--headless',
    '--log-level', 'warn',
  ];
}

async function retry<T>(what: string, deadline: number, fn: () => Promise<T>): Promise<T> {
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (server && (server.exitCode !== null || server.signalCode !== null)) {
      throw new Error(`server exited (${server.exitCode ?? server.signalCode}) while waiting for ${what}\n${logTail()}`);
    }
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      await sleepMs(250);
    }
  }
  throw new Error(`${what} did not succeed within the start-up deadline: ${String(lastErr)}\n${logTail()}`);
}

/**
 * Starts the server, connects, and bundles the workflows, once per process (memoized). When
 * start-up fails, every test that asks for the environment fails with the same error.
 */
export function setup(): Promise<TestEnv> {
  envPromise ??= startEnv();
  return envPromise;
}

/**
 * A test that needs the server: `envTest(name, async (e) => {...})`. Start-up happens inside the
 * first test (so a server that cannot start shows up as failed tests, not as cancelled ones).
 */
export function envTest(name: string, fn: (e: TestEnv) => Promise<void>, timeoutMs = 60_000): void {
  test(name, { timeout: timeoutMs }, async () => fn(await setup()));
}

async function startEnv(): Promise<TestEnv> {
  // SDK logs (core and TS). ERROR by default: timeouts tests make core warn about late activity
  // completions on purpose. PERDURE_TEST_LOG_LEVEL=WARN (or INFO/DEBUG) shows more.
  const level = (process.env.PERDURE_TEST_LOG_LEVEL ?? 'ERROR').toUpperCase() as LogLevel;
  Runtime.install({
    logger: new DefaultLogger(level),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: level, other: level }), forward: {} } },
  });
  // Bundle while the server starts.
  const bundlePromise = bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: new DefaultLogger('ERROR'),
  });
  bundlePromise.catch(() => undefined);

  const port = await freePort();
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `perdure-ts-${TARGET}-`));
  const logFile = path.join(tmpDir, 'server.log');
  const command = await serverCommand(port, tmpDir);
  const out = fs.openSync(logFile, 'a');
  server = spawn(command[0], command.slice(1), { stdio: ['ignore', out, out], detached: true });
  fs.closeSync(out);
  const spawnError = new Promise<never>((_, reject) => {
    server!.once('error', (err) => reject(new Error(`cannot start ${command[0]}: ${err.message}`)));
  });
  spawnError.catch(() => undefined);

  const deadline = Date.now() + 20_000;
  const address = `127.0.0.1:${port}`;
  await Promise.race([
    spawnError,
    (async () => {
      await retry('TCP connect', deadline, async () => {
        if (!(await tcpReachable(port))) throw new Error(`port ${port} not reachable`);
      });
    })(),
  ]);
  const clientConnection = await retry('Connection.connect', deadline, () =>
    Connection.connect({ address, connectTimeout: '2 seconds' }),
  );
  const connection = await retry('NativeConnection.connect', deadline, () => NativeConnection.connect({ address }));
  const client = new Client({ connection: clientConnection, namespace: 'default' });
  const bundle = await bundlePromise;
  env = { target: TARGET, address, client, connection, bundle, command, logFile };
  return env;
}

/** Stops running workers, closes connections, kills the server. Call in after(). */
export async function teardown(): Promise<void> {
  for (const w of runningWorkers) {
    try {
      if (w.getState() === 'RUNNING') w.shutdown();
    } catch {
      // already stopping
    }
  }
  runningWorkers.clear();
  try {
    await env?.connection.close();
  } catch {
    // ignore
  }
  try {
    await env?.client.connection.close();
  } catch {
    // ignore
  }
  killServer();
  envPromise = undefined;
  if (tmpDir && process.env.PERDURE_TEST_KEEP_TMP !== '1') {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  env = undefined;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

export type WorkerOpts = Partial<Omit<WorkerOptions, 'connection' | 'workflowBundle' | 'workflowsPath'>>;

/** Creates a worker on `taskQueue` (with the shared bundle and all activities). */
export async function createWorker(e: TestEnv, taskQueue: string, opts: WorkerOpts = {}): Promise<Worker> {
  const worker = await Worker.create({
    connection: e.connection,
    taskQueue,
    workflowBundle: e.bundle,
    activities,
    shutdownGraceTime: '1 second',
    ...opts,
  });
  runningWorkers.add(worker);
  return worker;
}

/** Runs `fn` while a worker polls `taskQueue`; the worker is shut down afterwards. */
export async function withWorker<T>(e: TestEnv, taskQueue: string, fn: () => Promise<T>, opts: WorkerOpts = {}): Promise<T> {
  const worker = await createWorker(e, taskQueue, opts);
  try {
    return await worker.runUntil(fn);
  } finally {
    runningWorkers.delete(worker);
  }
}

/** Polls `cond` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      if (await cond()) return;
      lastErr = undefined;
    } catch (err) {
      lastErr = err;
    }
    await sleepMs(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

/** Rejects if `p` has not settled within `ms` (so a broken server fails a test instead of hanging it). */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED' -> 'WorkflowExecutionStarted'. */
export function eventTypeName(t: HistoryEvent['eventType']): string {
  const raw = typeof t === 'number' ? temporal.api.enums.v1.EventType[t] : String(t);
  return (raw ?? `Unknown(${String(t)})`)
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

export function eventNames(events: HistoryEvent[] | null | undefined): string[] {
  return (events ?? []).map((e) => eventTypeName(e.eventType));
}

export function timeoutTypeName(t: temporal.api.enums.v1.TimeoutType | null | undefined): string {
  return t === null || t === undefined ? 'none' : temporal.api.enums.v1.TimeoutType[t];
}
