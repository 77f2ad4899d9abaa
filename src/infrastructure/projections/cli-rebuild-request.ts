import { userInfo } from 'node:os';
import type { RebuildRequest } from '../../projections/runtime/projection-checkpoints.queries.js';

/**
 * Who a rebuild asked for on the command line records: the operating-system user, the one
 * identity the process has (it holds no token). `userInfo` throws when the user has no passwd
 * entry (an arbitrary uid in a container): the rebuild still goes ahead, marked as the CLI's.
 */
export function cliRebuildRequest(osUser: () => { readonly username: string } = userInfo): RebuildRequest {
  let username = '';
  try {
    username = osUser().username;
  } catch {
    // No name to give: `unknown` below.
  }
  return { requestedBy: `cli:${username === '' ? 'unknown' : username}`, requestId: null, reason: null };
}
