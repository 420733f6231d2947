/**
 * Who calls the key node's domain (./service.ts), and which keys each may see (docs/keynode.md,
 * "Tenants"). The routes (./server.ts) name the caller from the API key; the node names itself.
 */
import type { KeyRecord } from './store/types.js';

/**
 * Who calls: a client API key (its tenant's keys only, and on export/import only the node-bound
 * encrypted form), an operator (every tenant's keys), or the paired fail-over primary (signed imports).
 */
export type Caller = { role: 'client'; tenant: string } | { role: 'operator' } | { role: 'paired_primary' };
/** The node itself (fail-over pushes): sees every key, as an operator. */
export const NODE_CALLER: Caller = { role: 'operator' };

/** True if `caller` may see `rec`: a client only its own tenant's keys (docs/keynode.md, "Tenants"). */
export function visibleTo(rec: KeyRecord, caller: Caller): boolean {
  return caller.role !== 'client' || rec.tenant === caller.tenant;
}
