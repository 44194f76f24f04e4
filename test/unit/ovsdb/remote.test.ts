import { describe, expect, test } from 'vitest';
import { OvsdbError } from '../../../src/ovsdb/errors.js';
import { connectOptions, formatRemote, parseRemote } from '../../../src/ovsdb/remote.js';

describe('parseRemote', () => {
  test.each([
    ['unix:/var/run/openvswitch/db.sock', { kind: 'unix', path: '/var/run/openvswitch/db.sock' }],
    ['unix:relative.sock', { kind: 'unix', path: 'relative.sock' }],
    ['tcp:127.0.0.1:6640', { kind: 'tcp', host: '127.0.0.1', port: 6640 }],
    ['tcp:ovs.example.org:1', { kind: 'tcp', host: 'ovs.example.org', port: 1 }],
    ['tcp:localhost:65535', { kind: 'tcp', host: 'localhost', port: 65535 }],
    ['tcp:[::1]:6640', { kind: 'tcp', host: '::1', port: 6640 }],
    ['tcp:[fe80::1:2]:6641', { kind: 'tcp', host: 'fe80::1:2', port: 6641 }],
  ])('%s', (text, expected) => {
    const remote = parseRemote(text);
    expect(remote).toEqual(expected);
    expect(parseRemote(formatRemote(remote))).toEqual(remote);
  });

  test.each([
    ['', /missing method/],
    ['/var/run/db.sock', /missing method/],
    ['unix:', /empty socket path/],
    ['ssl:1.2.3.4:6640', /ssl: remotes are not supported yet/],
    ['punix:/tmp/x', /passive/],
    ['ptcp:6640', /passive/],
    ['http://x', /unknown method "http"/],
    ['tcp:1.2.3.4', /missing ":PORT"/],
    ['tcp::6640', /empty host/],
    ['tcp:1.2.3.4:0', /out of range/],
    ['tcp:1.2.3.4:65536', /out of range/],
    ['tcp:1.2.3.4:66a', /not a number/],
    ['tcp:::1:6640', /brackets/],
    ['tcp:[::1:6640', /unterminated/],
    ['tcp:[::1]6640', /missing ":PORT"/],
    ['tcp:[1.2.3.4]:6640', /not an IPv6/],
    ['tcp:bad_host!:6640', /not an IPv4 address or a host name/],
  ])('%j is rejected', (text, message) => {
    let caught: unknown;
    try {
      parseRemote(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OvsdbError);
    expect((caught as OvsdbError).code).toBe('OVSDB_REMOTE_INVALID');
    expect((caught as OvsdbError).message).toMatch(message);
  });

  test('connectOptions', () => {
    expect(connectOptions(parseRemote('unix:/a'))).toEqual({ path: '/a' });
    expect(connectOptions(parseRemote('tcp:[::1]:6640'))).toEqual({ host: '::1', port: 6640 });
  });
});
