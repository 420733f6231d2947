/**
 * What a serving key node exposes on /metrics and /readyz (docs/monitoring.md, "Key node"): keys,
 * pending_backup keys, unused nonces, the backup stream's lag, outbox and last compaction, the
 * keyshare outbox, the fail-over lag. Read from the store and the agents at scrape time; no label
 * carries a key id, a tenant or an account.
 */
import type { GaugeSpec, ObserveOptions, ReadyCheck } from '../http/observe.js';
import type { OpenedNode } from './runtime.js';

type NodeParts = Pick<OpenedNode, 'store' | 'backup' | 'failover'>;

function ageSeconds(iso: string | null): number | undefined {
  return iso === null ? undefined : Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
}

/** The node's gauges and readiness checks for createKeyNodeApp's `observe`. */
export function nodeObservability(n: NodeParts): Omit<ObserveOptions, 'server'> {
  const { store, backup, failover } = n;
  const gauges: GaugeSpec[] = [
    { name: 'lifeboat_node_keys', help: 'keys on this node', collect: () => store.countKeys() },
    { name: 'lifeboat_node_pending_backup_keys', help: 'keys stored pending_backup: not yet durable in every required channel, refusing to sign', collect: () => store.countKeysWithStatus('pending_backup') },
    { name: 'lifeboat_node_unused_nonces', help: 'signing nonces drawn and not yet used', collect: () => store.countNonces() },
    {
      name: 'lifeboat_node_keyshare_outbox_entries',
      help: 'keyshare records waiting to reach the public logs, by state (unsealed, sealed)',
      labelNames: ['state'],
      collect: async () => {
        const c = await store.countKeyshareOutbox();
        return [
          { labels: { state: 'unsealed' }, value: c.unsealed },
          { labels: { state: 'sealed' }, value: c.sealed },
        ];
      },
    },
  ];
  const ready: Record<string, ReadyCheck> = { store: () => store.countKeys() };
  if (backup) {
    // One read of the agent's state serves every backup gauge of a scrape (they are collected together).
    let last: { at: number; status: ReturnType<typeof backup.status> } | undefined;
    const status = () => {
      if (!last || Date.now() - last.at > 250) last = { at: Date.now(), status: backup.status() };
      return last.status;
    };
    gauges.push(
      { name: 'lifeboat_node_backup_lag_entries', help: 'backup entries not yet acknowledged by the backup service (unsealed and sealed)', collect: async () => ((s) => s.unsealed + s.unacked)(await status()) },
      { name: 'lifeboat_node_backup_outbox_entries', help: 'committed changes waiting in the backup outbox, by state (unsealed, sealed = uploaded or not, unacknowledged)', labelNames: ['state'], collect: async () => ((s) => [{ labels: { state: 'unsealed' }, value: s.unsealed }, { labels: { state: 'sealed' }, value: s.unacked }])(await status()) },
      { name: 'lifeboat_node_backup_acked_seq', help: 'the last backup entry the service acknowledged', collect: async () => (await status()).ackedSeq },
      { name: 'lifeboat_node_backup_sealed_seq', help: 'the last backup entry sealed on this node', collect: async () => (await status()).sealedSeq },
      { name: 'lifeboat_node_backup_pending_keys', help: 'new keys waiting for the backup service to acknowledge their entry', collect: async () => (await status()).pendingKeys },
      { name: 'lifeboat_node_backup_last_compaction_age_seconds', help: 'seconds since the last completed compaction (absent before the first)', collect: async () => ageSeconds((await status()).compactedAt) },
      { name: 'lifeboat_node_backup_connected', help: '1 when the backup agent’s last attempt succeeded, 0 when it is failing', collect: async () => ((await status()).lastError === null ? 1 : 0) },
      { name: 'lifeboat_node_backup_rollback_detected', help: '1 when the backup service lost acknowledged entries (see docs/backup.md)', collect: async () => ((await status()).rollbackDetected ? 1 : 0) },
    );
    ready.backup_agent = async () => {
      if ((await status()).lastError !== null) throw new Error('backup agent failing');
    };
  }
  const failoverStatus = async () => (await failover.status()).failover;
  gauges.push(
    { name: 'lifeboat_node_failover_lag_keys', help: 'keys not yet acknowledged by the paired fail-over node (absent without one)', collect: async () => (await failoverStatus())?.lag },
    { name: 'lifeboat_node_failover_connected', help: '1 when the last push to the fail-over succeeded (absent without one)', collect: async () => ((s) => (s ? (s.last_error === null ? 1 : 0) : undefined))(await failoverStatus()) },
  );
  return { gauges, ready };
}
