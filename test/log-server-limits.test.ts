/**
 * The log server's bounds over real loopback sockets (review M3, M4): a request dribbled in too slowly
 * gets 408 `request_timeout` and its connection is closed, an idle connection is closed; and a
 * submitter's client stops reading a hostile log's endless answer at its cap.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateIdentity } from '../src/identity.js';
import { addEntry } from '../src/log/server/client.js';
import { initLog, startLogServer, type RunningLog } from '../src/log/server/serve.js';
import { testEntry } from './helpers/logserver.js';
import { trackedTempDir } from './helpers/tmp.js';

const alice = generateIdentity('operator');

/** Opens a socket, runs `talk` on it, and resolves with what the server sent before it closed (or `timeout` after `ms`). */
function converse(url: string, ms: number, talk: (write: (s: string) => boolean) => void): Promise<{ closed: boolean; answer: string; afterMs: number }> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve) => {
    const sock = connect(Number(port), hostname);
    let answer = '';
    let closed = false;
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ closed, answer, afterMs: Date.now() - started });
    }, ms);
    sock.on('data', (d) => (answer += d.toString()));
    sock.on('error', () => {});
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ closed, answer, afterMs: Date.now() - started });
    });
    sock.on('connect', () => talk((s) => !sock.destroyed && sock.write(s)));
  });
}

describe('log server limits (loopback sockets)', () => {
  let log: RunningLog;
  before(async () => {
    const dir = join(trackedTempDir('lifeboat-log-limits-'), 'log');
    await initLog(dir, { origin: 'limits.lifeboat.example/log' });
    log = await startLogServer({ dataDir: dir, intervalMs: 50, requestTimeoutMs: 1000, connectionTimeoutMs: 2000 });
  });
  after(async () => log?.close());

  it('answers a request dribbled in past the request timeout with 408 request_timeout and closes it (M3)', async () => {
    let timer: NodeJS.Timeout | undefined;
    const r = await converse(log.url, 10_000, (write) => {
      write('POST /add HTTP/1.1\r\nHost: x\r\n');
      // one header byte every 150 ms: never idle, never done
      timer = setInterval(() => write('X'), 150);
    });
    clearInterval(timer);
    assert.ok(r.closed, `the connection was closed (after ${r.afterMs} ms)`);
    assert.match(r.answer, /^HTTP\/1\.1 408/);
    assert.match(r.answer, /request_timeout/);
  });

  it('closes a connection that sends nothing (M3)', async () => {
    const r = await converse(log.url, 10_000, () => {});
    assert.ok(r.closed, 'an idle connection is closed');
    assert.ok(r.afterMs < 9000);
  });

  it('still serves a normal request after them', async () => {
    const res = await fetch(`${log.url}/healthz`);
    assert.equal(res.status, 200);
  });
});

describe('the submitter client against a hostile log (M4)', () => {
  let hostile: Server;
  let url: string;
  let sent = 0;
  before(async () => {
    hostile = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (!res.destroyed && sent < 512 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => {});
      pump();
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    const addr = hostile.address() as { port: number };
    url = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    hostile.closeAllConnections();
    await new Promise((r) => hostile.close(r));
  });

  it('stops reading an answer past its cap: peer_bad_answer, not the whole stream', async () => {
    const err = await addEntry(url, testEntry(alice, 'to a hostile log'), { timeoutMs: 20_000 }).then(
      () => undefined,
      (e: { code?: string; message?: string }) => e,
    );
    assert.equal(err?.code, 'peer_bad_answer', err?.message);
    assert.match(err!.message!, /too large/);
    assert.ok(sent < 64 * 1024 * 1024, `the client stopped early (${sent} bytes sent)`);
  });
});
