/**
 * The key node client's transport (src/util/http-agent.ts) against a real server on a loopback port:
 * one kept connection per node across calls, the request as sent (method, headers, body), a
 * deadline that ends a node that never answers, an answer too large refused, and an idle kept
 * connection that never holds the process open.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isLifeboatError } from '../src/errors.js';
import { KeyNodeClient } from '../src/keynode/client.js';
import { keepAliveAgents, keepAliveRequest } from '../src/util/http-agent.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  socket: Socket;
}

describe('key node client over keep-alive http', () => {
  let server: Server;
  let url = '';
  const connections: Socket[] = [];
  const seen: Seen[] = [];
  const held: ServerResponse[] = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, socket: req.socket });
        if (req.url!.startsWith('/v1/keys/key_silent/')) return void held.push(res); // never answers
        if (req.url === '/v1/status') return void res.end('x'.repeat(4096));
        res.setHeader('content-type', 'application/json');
        if (req.url === '/v1/keys/key_gone') {
          res.statusCode = 404;
          return void res.end(JSON.stringify({ err_type: 'key_id_not_exists', message: 'key key_gone does not exist on this node', hint: 'import it' }));
        }
        res.end(JSON.stringify({ nonce_id: 'ab'.repeat(16), commitments: { echo: body } }));
      });
    });
    server.on('connection', (c: Socket) => connections.push(c));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const r of held) r.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('an idle kept connection does not hold the process open (its socket is unreferenced)', async () => {
    // First in the file: no socket of another case is still closing.
    const client = new KeyNodeClient({ url, apiKey: 'lbk_0123456789abcdef_token' });
    await client.commitments('key_c');
    // Wait for the agent to take the socket back (the tick after the answer).
    const free = () => Object.values(keepAliveAgents().http.freeSockets).flat().length;
    while (free() === 0) await new Promise((resolve) => setImmediate(resolve));
    // Referenced TCP sockets: the server's side of the connection only, not the client's.
    assert.equal(connections.length, 1);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length, 1);
  });

  it('calls in a row share one connection (also across clients of one node), and each request arrives whole, with its key and body', async () => {
    const client = new KeyNodeClient({ url, apiKey: 'lbk_0123456789abcdef_token' });
    const before = connections.length;
    const from = seen.length;
    for (let i = 0; i < 5; i++) {
      const r = await client.commitments('key_a', { messageLength: i });
      assert.deepEqual(r.commitments, { echo: JSON.stringify({ message_length: i }) });
    }
    assert.equal(new Set(seen.slice(from).map((x) => x.socket)).size, 1, 'one connection for five calls');
    assert.equal(connections.length, before, 'the previous case\'s connection, kept by the process\'s agent');
    const last = seen[seen.length - 1]!;
    assert.equal(last.method, 'POST');
    assert.equal(last.url, '/v1/keys/key_a/commitments');
    assert.equal(last.headers.authorization, 'Bearer lbk_0123456789abcdef_token');
    assert.equal(last.headers['content-type'], 'application/json');
    assert.equal(last.headers.connection, 'keep-alive');
    // A node's typed error comes back typed, on the same connection.
    await assert.rejects(client.key('key_gone'), (err) => isLifeboatError(err, 'key_id_not_exists') && err.status === 404 && err.hint === 'import it');
    assert.equal(connections.length, before);
  });

  it('a node that never answers is peer_unreachable at the deadline; the next call takes a fresh connection and works', async () => {
    const client = new KeyNodeClient({ url, apiKey: 'lbk_0123456789abcdef_token', timeoutMs: 300 });
    const t0 = performance.now();
    await assert.rejects(client.commitments('key_silent'), (err) => isLifeboatError(err, 'peer_unreachable') && err.message.includes(url));
    assert.ok(performance.now() - t0 >= 290, 'not before the deadline');
    const before = connections.length;
    assert.equal((await client.commitments('key_b')).nonce_id, 'ab'.repeat(16));
    assert.equal(connections.length - before, 1, 'the timed-out connection is not reused');
  });

  it('an answer over the size limit is refused; a node that is not JSON is peer_bad_answer; a closed port is peer_unreachable', async () => {
    await assert.rejects(keepAliveRequest(`${url}/v1/status`, { method: 'GET', headers: {}, timeoutMs: 5000, maxBytes: 1024 }), { name: 'KeepAliveRequestError', reason: 'answer_too_large' });
    await assert.rejects(new KeyNodeClient({ url, apiKey: 'lbk_0123456789abcdef_token' }).status(), (err) => isLifeboatError(err, 'peer_bad_answer'));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(new KeyNodeClient({ url: `http://127.0.0.1:${port}` }).identity(), (err) => isLifeboatError(err, 'peer_unreachable'));
  });

});
