/** What the key node client commands share (`key …`, `sign`): the API key, clients, common options. */
import { readApiKey } from '../api-key.js';
import type { Command } from 'commander';
import { KeyNodeClient } from '../../keynode/client.js';

export interface ApiOpts {
  apiKeyFile?: string;
  json?: boolean;
}

/**
 * The API key from --api-key-file (0600) or $LIFEBOAT_API_KEY, never from argv. Throws InvalidInputError
 * `api_key_required` when neither is there, `insecure_permissions` for a file others may read.
 */
export function apiKey(o: ApiOpts): string {
  return readApiKey(o.apiKeyFile);
}

/** Clients of the comma-separated `urls`, with the API key (apiKey's errors). */
export function clients(urls: string, o: ApiOpts): KeyNodeClient[] {
  const key = apiKey(o);
  return urls.split(',').map((u) => new KeyNodeClient({ url: u.trim(), apiKey: key }));
}

export function withApi(cmd: Command): Command {
  return cmd.option('--api-key-file <file>', 'file holding the API key (0600); default $LIFEBOAT_API_KEY').option('--json', 'print JSON');
}
