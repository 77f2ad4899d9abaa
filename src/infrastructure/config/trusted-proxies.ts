import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Which proxies may tell us the client's address in `X-Forwarded-For`: none (`false`), or those
 * at these addresses, CIDR blocks or named ranges (fastify's `trustProxy`, read by proxy-addr).
 */
export type TrustedProxies = false | readonly string[];

/** proxy-addr's names for the loopback, link-local and private ranges, IPv4 and IPv6. */
const namedRanges = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An IPv4 or IPv6 address, a CIDR block of either, or a named range. */
function isProxyAddress(text: string): boolean {
  if (namedRanges.has(text)) return true;
  const [address = '', prefix, ...rest] = text.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}

const howToTrust = 'give the addresses or CIDR blocks of the proxies in front of the service (e.g. 10.0.0.0/8, or uniquelocal)';

/**
 * `TRUST_PROXY` as text: `false` (or `0`), or a comma-separated list of the proxies' addresses.
 * Proxies append to `X-Forwarded-For`, so its left-most entries are whatever the client wrote:
 * whoever is believed decides the IP behind the per-IP rate limits, the security log and event
 * metadata. So `true` (every hop) is refused rather than read as "all", and so is a hop count:
 * it cannot tell a proxy from a client that reaches the service directly, and fastify 5 ignores
 * one, trusting nobody, which would leave every client behind the proxy sharing its address.
 */
export const trustedProxiesText = z
  .string()
  .default('false')
  .transform((text, context): TrustedProxies => {
    const value = text.trim();
    if (value === 'false' || value === '0') return false;
    if (value === 'true') {
      context.addIssue({ code: 'custom', message: `\`true\` would trust every hop, so a client could choose its own IP by sending X-Forwarded-For; ${howToTrust}` });
      return z.NEVER;
    }
    if (/^[0-9]+$/.test(value)) {
      context.addIssue({ code: 'custom', message: `a number of proxies cannot tell a proxy from a client that connects directly (fastify ignores it); ${howToTrust}` });
      return z.NEVER;
    }
    const proxies = value.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0);
    const wrong = proxies.filter((entry) => !isProxyAddress(entry));
    if (proxies.length === 0 || wrong.length > 0) {
      const which = wrong.length > 0 ? `; not an address: ${wrong.join(', ')}` : '';
      context.addIssue({ code: 'custom', message: `must be false, or a comma-separated list of the proxies' IP addresses, CIDR blocks or loopback/linklocal/uniquelocal${which}` });
      return z.NEVER;
    }
    return proxies;
  });
