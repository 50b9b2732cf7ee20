// Starts a real `perdure server start-dev` on a free port for a test file.
import { ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';

const root = path.resolve(__dirname, '..', '..', '..');

export interface TestServer {
  address: string;
  client: Client;
  connection: NativeConnection;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('perdure server did not start');
}

export async function startServer(): Promise<TestServer> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perdure-ts-'));
  const db = path.join(dir, 'perdure.db');
  // PERDURE_TEST_TARGET=temporal checks the tests themselves against Temporal's dev server.
  const server: ChildProcess = process.env.PERDURE_TEST_TARGET === 'temporal'
    ? spawn('temporal', ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port),
      '--http-port', String(await freePort()), '--metrics-port', String(await freePort()),
      '--db-filename', db, '--log-level', 'error'], { stdio: 'inherit' })
    : spawn(process.env.PERDURE_BIN ?? path.join(root, 'target', 'debug', 'perdure'), ['server', 'start-dev',
      '--ip', '127.0.0.1', '--port', String(port), '--db-filename', db, '--headless', '--log-level', 'warn'],
    { stdio: 'inherit' });
  await waitForPort(port, 20_000);
  const address = `127.0.0.1:${port}`;
  const client = new Client({ connection: await Connection.connect({ address }) });
  const connection = await NativeConnection.connect({ address });
  return {
    address,
    client,
    connection,
    async stop() {
      await connection.close();
      await client.connection.close();
      server.kill('SIGKILL');
    },
  };
}

export async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
