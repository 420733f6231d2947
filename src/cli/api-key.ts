/**
 * The API key a client command sends: from `--api-key-file FILE` (0600) or $LIFEBOAT_API_KEY, never
 * from argv. Shared by the command groups that talk to key nodes (key, sign, ers, node config), without
 * one group loading another.
 */
import { InvalidInputError } from '../errors.js';
import { utf8 } from '../util/bytes.js';
import { assertPrivateFile, readFileOrThrow } from '../util/files.js';

/** Throws InvalidInputError `api_key_required` when there is none (`role` names the key the hint asks for). */
export function readApiKey(file: string | undefined, role?: string): string {
  if (file) {
    assertPrivateFile(file, 'api key file');
    return utf8.decode(readFileOrThrow(file, 'api key file')).trim();
  }
  const k = process.env.LIFEBOAT_API_KEY;
  if (!k) throw new InvalidInputError('no API key', { code: 'api_key_required', hint: `set LIFEBOAT_API_KEY or pass --api-key-file FILE (0600)${role ? `: ${role}` : ''}` });
  return k;
}
