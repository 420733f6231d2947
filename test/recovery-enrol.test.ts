/**
 * After a reconstruction, the holders that did not enrol the new primary are named, in text and
 * --json, each with the exact commands that fix it; both commands, run as printed, do: `lifeboat
 * holder enrol --primary` on the holder (while it serves) and `lifeboat recovery enrol` from the new
 * primary.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli as runWithFd } from '../src/drill/proc.js';
import { runCli, type RunningCli, startCli } from './helpers/cli.js';
import { trackedTempDir } from './helpers/tmp.js';

interface Holder {
  dir: string;
  fingerprint: string;
  server?: RunningCli;
  url?: string;
}

interface NotEnrolled {
  url: string;
  fingerprint: string;
  reason: string;
  on_holder: string;
  from_here: string;
}

async function ok(args: string[], opts: { input?: string } = {}) {
  const r = await runCli(args, { ...opts, timeoutMs: 120_000 });
  assert.equal(r.code, 0, `${args.slice(0, 2).join(' ')}: ${r.stderr}`);
  return r;
}

/** A printed command as the test runs it: `lifeboat` is the CLI under test; the words need no quoting here. */
const argsOf = (command: string): string[] => {
  const words = command.split(' ');
  assert.equal(words[0], 'lifeboat');
  return words.slice(1);
};

describe('reconstruct names the holders that did not enrol the new primary, and how to fix each', () => {
  const root = trackedTempDir('lb-enrol-');
  const operatorKey = join(root, 'operator.json');
  const holders: Holder[] = [{ dir: join(root, 'h1'), fingerprint: '' }, { dir: join(root, 'h2'), fingerprint: '' }];
  let primaryFp = '';
  let offline = '';
  const serve = async (h: Holder, port = 0) => {
    h.server = await startCli(['holder', 'serve', '--data-dir', h.dir, '--listen', `127.0.0.1:${port}`, '--log-level', 'silent']);
    h.url = h.server.url;
  };
  const spec = (h: Holder) => `${h.url}#${h.fingerprint}`;
  const enrolledPrimary = async (h: Holder) => (JSON.parse((await ok(['holder', 'show', '--data-dir', h.dir, '--json'])).stdout) as { primary: { identity: string } }).primary.identity;

  before(async () => {
    const primary = join(root, 'primary');
    const [p, op] = await Promise.all([ok(['primary', 'init', '--data-dir', primary, '--json']), ok(['operator', 'keygen', '--out', operatorKey, '--json'])]);
    const pid = JSON.parse(p.stdout) as { identity: string; fingerprint: string };
    primaryFp = pid.fingerprint;
    const opId = (JSON.parse(op.stdout) as { identity: string }).identity;
    await Promise.all(
      holders.map(async (h) => {
        h.fingerprint = (JSON.parse((await ok(['holder', 'init', '--data-dir', h.dir, '--primary', pid.identity, '--operator', opId, '--json'])).stdout) as { fingerprint: string }).fingerprint;
        await serve(h);
      }),
    );
    const init = await runWithFd(['recovery', 'init', '--data-dir', primary, '--holder', spec(holders[0]!), '--holder', spec(holders[1]!), '--secret-fd', '3', '--json'], { secretFd: true, timeoutMs: 120_000 });
    assert.equal(init.code, 0, init.stderr);
    offline = init.secret.trim();
  });
  after(async () => {
    for (const h of holders) await h.server?.stop('SIGTERM');
  });

  it('lists the unreachable holder with both fixes, and each fix, run as printed, enrols it', async () => {
    const h2 = holders[1]!;
    const h2Port = Number(new URL(h2.url!).port);
    await h2.server!.stop('SIGTERM');
    const args = (dir: string) => ['recovery', 'reconstruct', '--data-dir', join(root, dir), '--operator-key', operatorKey, '--holder', spec(holders[0]!), '--typed-shares', '1', '--primary-fingerprint', primaryFp];
    const [json, text] = await Promise.all([ok([...args('new-json'), '--json'], { input: `${offline}\n` }), ok(args('new-text'), { input: `${offline}\n` })]);

    const doc = JSON.parse(json.stdout) as { primary: string; enrolled: string[]; not_enrolled: NotEnrolled[] };
    assert.deepEqual(doc.enrolled, [holders[0]!.url]);
    assert.deepEqual(doc.not_enrolled, [
      {
        url: h2.url,
        fingerprint: h2.fingerprint,
        reason: 'peer_unreachable',
        on_holder: `lifeboat holder enrol --primary ${doc.primary}`,
        from_here: `lifeboat recovery enrol --operator-key ${operatorKey} --holder ${h2.url}#${h2.fingerprint} --data-dir ${join(root, 'new-json')}`,
      },
    ]);
    const textPrimary = /^new primary: (lb1\.\S+)$/m.exec(text.stdout)![1]!;
    assert.ok(
      text.stdout.includes(
        [
          'not enrolled with the new primary (1 holder); fix each with either command:',
          `  ${h2.url}#${h2.fingerprint} (peer_unreachable)`,
          `    on that holder:  lifeboat holder enrol --primary ${textPrimary}`,
          `    or from here:    lifeboat recovery enrol --operator-key ${operatorKey} --holder ${h2.url}#${h2.fingerprint} --data-dir ${join(root, 'new-text')}`,
        ].join('\n'),
      ),
      text.stdout,
    );

    // The holder comes back at its address: the command from the new primary enrols it...
    await serve(h2, h2Port);
    const fromHere = await ok([...argsOf(doc.not_enrolled[0]!.from_here), '--json']);
    assert.deepEqual((JSON.parse(fromHere.stdout) as { enrolled: { url: string }[] }).enrolled.map((e) => e.url), [h2.url]);
    assert.equal(await enrolledPrimary(h2), doc.primary);
    // ...and so does the one on the holder itself, while it serves.
    await ok(argsOf(`lifeboat holder enrol --primary ${textPrimary}`).concat(['--data-dir', h2.dir]));
    assert.equal(await enrolledPrimary(h2), textPrimary);
  });

  it('recovery enrol names a holder it could not enrol, with the command for that holder', async () => {
    const h1 = holders[0]!;
    await h1.server!.stop('SIGTERM');
    const r = await runCli(['recovery', 'enrol', '--operator-key', operatorKey, '--holder', spec(h1), '--data-dir', join(root, 'new-json')], { timeoutMs: 120_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^lifeboat: error: primary \\S+ not enrolled on ${h1.url!.replace(/[.]/g, '\\.')} \\(peer_unreachable\\) \\(enrol_incomplete\\)\\nlifeboat: hint: on ${h1.url!.replace(/[.]/g, '\\.')} run \`lifeboat holder enrol --primary lb1\\.`));
  });
});
