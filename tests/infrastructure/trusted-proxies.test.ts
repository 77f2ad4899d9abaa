import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/infrastructure/config/config.js';

describe('TRUST_PROXY', () => {
  it('trusts no proxy unless told to', () => {
    expect(loadConfig({}).TRUST_PROXY).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).TRUST_PROXY).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '0' }).TRUST_PROXY).toBe(false);
  });

  it('reads a comma-separated list as the addresses, CIDR blocks and named ranges of the trusted proxies', () => {
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1,10.0.0.0/8' }).TRUST_PROXY).toEqual(['10.0.0.1', '10.0.0.0/8']);
    expect(loadConfig({ TRUST_PROXY: ' 192.168.1.2 , fd00::/8, ::1, uniquelocal ' }).TRUST_PROXY).toEqual(['192.168.1.2', 'fd00::/8', '::1', 'uniquelocal']);
  });

  it('refuses `true`, which would let any client choose its IP, and says what to give instead', () => {
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/TRUST_PROXY: .*every hop.*addresses or CIDR blocks/);
  });

  // A hop count trusts whoever connects, proxy or not; fastify 5 ignores one (trusting nobody).
  it.each(['1', '2'])('refuses a hop count (%s), and says what to give instead', (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY: .*number of proxies.*addresses or CIDR blocks/);
  });

  it.each(['', 'yes', '10.0.0.300', '10.0.0.0/33', 'proxy.internal', '10.0.0.1,,nope', '1.5', '-1'])('refuses %j, naming the setting', (value) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(/TRUST_PROXY/);
  });
});
