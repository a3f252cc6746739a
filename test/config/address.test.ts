import { describe, expect, it } from 'vitest';
import { isLoopbackHost, parseHostPort } from '../../src/config/address.js';
import { editDistance, nearest } from '../../src/config/nearest.js';

describe('parseHostPort', () => {
  it('parses names, IPv4 and bracketed IPv6', () => {
    expect(parseHostPort('orders.postgres.database.azure.com:5432')).toEqual({
      ok: true,
      host: 'orders.postgres.database.azure.com',
      port: 5432,
    });
    expect(parseHostPort('10.0.0.4:3306')).toEqual({ ok: true, host: '10.0.0.4', port: 3306 });
    expect(parseHostPort('[fe80::1]:1')).toEqual({ ok: true, host: 'fe80::1', port: 1 });
    expect(parseHostPort('h:65535')).toMatchObject({ ok: true, port: 65535 });
  });

  it('rejects what is not host:port', () => {
    for (const bad of ['h:0', 'h:65536', 'h:', 'h:-1', 'h:1.5', 'h: 1', 'h', ':1', '::1:5432', '[::1]5432', 'a b:1', 'tcp://h:1']) {
      expect(parseHostPort(bad).ok, bad).toBe(false);
    }
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback from the rest', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '0:0:0:0:0:0:0:1']) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1', 'localhost.example.com']) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});

describe('nearest', () => {
  it('suggests close words only', () => {
    expect(editDistance('protocl', 'protocol')).toBe(1);
    expect(editDistance('portocol', 'protocol')).toBe(1);
    expect(editDistance('abc', '')).toBe(3);
    expect(nearest('protocl', ['name', 'protocol', 'uri'])).toBe('protocol');
    expect(nearest('URI', ['name', 'protocol', 'uri'])).toBe('uri');
    expect(nearest('colour', ['name', 'protocol', 'uri'])).toBeUndefined();
    expect(nearest('x', [])).toBeUndefined();
  });
});
