/**
 * Which durable channels a new key waits for: the default keeps every existing node's behaviour (a
 * backup-only node waits for the acknowledgement unless usable_before_ack, a node without channels
 * waits for nothing), a node with words and a log waits for the log; `durable_channels` is set by name,
 * validated against what the node has set up, and refused without changing anything.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultNodeConfig, type NodeConfig, nodePaths } from '../src/keynode/config.js';
import { configuredChannels, requiredChannels } from '../src/keynode/durable.js';
import { applySetting, getSetting } from '../src/keynode/settings.js';

const base = defaultNodeConfig(nodePaths('/tmp/x'));
const backup = { server: 'https://b.example', account: 'a', stream: 's', usable_before_ack: false, wait_ms: 10_000, batch_entries: 1000, compact_entries: 10_000, compact_seconds: 86_400 };
const withLog: NodeConfig = { ...base, keyshare: { mode: 'passphrase', recipient: null, mnemonic_check: null }, logs: [{ url: 'http://log.example', log_key: 'k', witness_keys: [], quorum: 0 }] };

test('the default channels keep every existing node as it was, and add the log once the node has words and a log', () => {
  assert.deepEqual(requiredChannels(base), [], 'no channel: keys are active at once, as before');
  assert.deepEqual(requiredChannels({ ...base, backup }), ['backup'], 'backup-only: waits for the acknowledgement, as before');
  assert.deepEqual(requiredChannels({ ...base, backup: { ...backup, usable_before_ack: true } }), [], 'usable_before_ack: signs at once, as before');
  assert.deepEqual(requiredChannels({ ...base, keyshare: withLog.keyshare }), [], 'words without a log: nothing to wait for');
  assert.deepEqual(requiredChannels(withLog), ['log']);
  assert.deepEqual(requiredChannels({ ...withLog, backup }), ['backup', 'log']);
  assert.deepEqual(configuredChannels({ ...withLog, ers: { ...base.ers, enabled: true } }), ['log', 'ers']);
});

test('durable_channels is set by name, checked against the channels the node has, and refused with nothing changed', () => {
  const r = applySetting({ ...withLog, backup }, 'durable_channels', 'log');
  assert.deepEqual(r.config.durable_channels, ['log']);
  assert.deepEqual(requiredChannels(r.config), ['log'], 'an explicit list wins over the default');
  assert.deepEqual(applySetting(r.config, 'durable_channels', 'default').config.durable_channels, null);
  assert.deepEqual(applySetting(withLog, 'durable_channels', 'none').config.durable_channels, []);
  for (const [value, why] of [
    ['backup', /no backup channel/],
    ['ers', /no ers channel/],
    ['log,log', /twice/],
    ['tape', /not a channel/],
  ] as const) {
    assert.throws(() => applySetting(withLog, 'durable_channels', value), (e: Error & { code?: string }) => e.code === 'invalid_input' && why.test(e.message), value);
  }
  assert.throws(() => applySetting(base, 'durable_channels', 'log'), /no log channel/, 'no words or no log: the key would never be usable');
  assert.equal(applySetting(base, 'durable_wait_ms', '250').config.durable_wait_ms, 250);
  assert.throws(() => applySetting(base, 'durable_wait_ms', '120001'), { code: 'invalid_input' });
  assert.equal(getSetting(withLog, 'keyshare.mode'), 'passphrase');
  assert.throws(() => applySetting(withLog, 'keyshare.mode', 'recipient'), /not set by `node config set`/);
});
