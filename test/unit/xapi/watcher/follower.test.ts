import { afterEach, describe, expect, it } from 'vitest';
import { XapiError, XapiTransportError } from '../../../../src/xapi/errors.js';
import { harness, vifsOnly, type Harness } from './harness.js';
import { event, ref, token, uuid } from './scripted-xapi.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

describe('EventFollower: which host am I', () => {
  it('finds this host by INSTALLATION_UUID, not by the session (which names the master after a redirect)', async () => {
    h = harness({ thisHostUuid: uuid(0xa01) });
    h.watcher.start();
    await h.untilPolling();
    expect(h.watcher.cache.host?.uuid).toBe(uuid(0xa01));
    expect(h.xapi.count('session.get_this_host')).toBe(0);
    expect(h.xapi.poll?.classes).toContain(`host/${ref(0xa01)}`);
  });

  it('follows the session\'s host, with an error line, when XAPI knows no host of the inventory\'s uuid', async () => {
    h = harness({ thisHostUuid: uuid(0xbad) });
    h.watcher.start();
    await h.untilPolling();
    expect(h.watcher.phase).toBe('live');
    expect(h.watcher.cache.host?.uuid).toBe(uuid(0xa00));
    expect(h.xapi.count('session.get_this_host')).toBe(1);
    expect(h.logs.some((l) => l.level === 50 && l.installationUuid === uuid(0xbad))).toBe(true);
  });

  it('asks the session only when the inventory has no uuid', async () => {
    h = harness();
    h.watcher.start();
    await h.untilPolling();
    expect(h.watcher.cache.host?.uuid).toBe(uuid(0xa00));
    expect(h.xapi.count('host.get_by_uuid')).toBe(0);
  });
});

describe('EventFollower: the token as xapi has it', () => {
  it('sends back a timed-out poll\'s unchanged token and moves only to the token a reply carries', async () => {
    h = harness();
    h.watcher.start();
    await h.untilPolling();
    const first = h.xapi.poll!;
    expect(first.token).toBe(token(100));
    first.answer([], first.token);
    await h.clock.tick();
    const second = h.xapi.poll!;
    expect(second).not.toBe(first);
    expect(second.token).toBe(token(100));
    // The last *matching* change, not the database's generation.
    second.answer([event('pool', 'mod', h.xapi.poolRef, h.xapi.pool)], token(104));
    await h.clock.tick();
    expect(h.xapi.poll!.token).toBe(token(104));
    expect(h.xapi.count('event.inject')).toBe(1);
    expect(h.phases).toEqual(['syncing', 'live']);
  });

  it('resynchronises within tokenProbeMs when the token is ahead of the database (xapi restarted on an older one)', async () => {
    h = harness({ tokenProbeMs: 120_000, eventTimeoutSec: 30 });
    h.watcher.start();
    await h.untilPolling();
    h.xapi.dbGeneration = 40; // the database now behind the token (100)
    const vif = h.xapi.addVif(1, 2, 3);
    for (let elapsed = 0; elapsed < 120_000; elapsed += 30_000) {
      await h.clock.advance(30_000);
      const poll = h.xapi.poll!;
      poll.answer([], poll.token);
      await h.clock.tick();
    }
    expect(h.xapi.count('event.inject')).toBe(3); // sync, probe, resync
    await h.untilPolling();
    expect(h.xapi.poll!.token).toBe(token(41));
    h.watcher.changeInterest(vifsOnly([vif]));
    await h.clock.tick();
    expect(h.watcher.cache.vif(vif).state).toBe('known');
  });

  it('does not resynchronise on a healthy idle token: the probe\'s pool event moves it', async () => {
    h = harness({ tokenProbeMs: 60_000 });
    h.watcher.start();
    await h.untilPolling();
    for (let i = 0; i < 2; i++) {
      await h.clock.advance(30_000);
      const poll = h.xapi.poll!;
      poll.answer([], poll.token);
      await h.clock.tick();
    }
    expect(h.xapi.count('event.inject')).toBe(2);
    expect(h.xapi.count('pool.get_all')).toBe(1);
    expect(h.phases).toEqual(['syncing', 'live']);
  });
});

describe('EventFollower: event.inject unknown', () => {
  it('falls back to token "" after the fetch, logged once, and stays live', async () => {
    h = harness();
    h.xapi.override('event.inject', () => {
      throw new XapiError('MESSAGE_METHOD_UNKNOWN', ['event.inject'], 'event.inject');
    });
    h.watcher.start();
    await h.untilPolling();
    expect(h.xapi.poll!.token).toBe('');
    h.watcher.requestResync();
    await h.untilPolling();
    expect(h.xapi.poll!.token).toBe('');
    expect(h.phases).not.toContain('down');
    expect(h.logs.filter((l) => l.msg.includes('no event.inject'))).toHaveLength(1);
  });
});

describe('EventFollower: answers that cannot be decoded', () => {
  const garbled = (): XapiTransportError => new XapiTransportError('XAPI_PROTOCOL', 'malformed XML', { method: 'event.from' });

  it('asks again from the same token once; a second in a row re-reads the objects of interest without going down', async () => {
    h = harness();
    const vif = h.xapi.addVif(1, 2, 3);
    h.watcher.changeInterest(vifsOnly([vif]));
    h.watcher.start();
    await h.untilPolling();
    const sent = h.xapi.poll!.token;
    h.xapi.poll!.fail(garbled());
    await h.clock.tick();
    expect(h.xapi.poll!.token).toBe(sent);
    expect(h.xapi.count('VIF.get_all_records_where')).toBe(1);
    h.xapi.poll!.fail(garbled());
    await h.untilPolling();
    expect(h.xapi.count('VIF.get_all_records_where')).toBe(2);
    expect(h.phases).not.toContain('down');
    expect(h.watcher.cache.vif(vif).state).toBe('known');
  });

  it('paces the re-reads with the backoff while answers keep failing to decode', async () => {
    h = harness({ backoff: { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0 } });
    h.watcher.start();
    await h.untilPolling();
    for (let i = 0; i < 2; i++) {
      h.xapi.poll!.fail(garbled());
      await h.clock.tick();
    }
    await h.untilPolling();
    expect(h.xapi.count('pool.get_all')).toBe(2);
    for (let i = 0; i < 2; i++) {
      h.xapi.poll!.fail(garbled());
      await h.clock.tick();
    }
    expect(h.xapi.count('pool.get_all')).toBe(2);
    await h.clock.advance(1000);
    await h.untilPolling();
    expect(h.xapi.count('pool.get_all')).toBe(3);
    expect(h.phases).not.toContain('down');
  });
});

describe('EventFollower: abandoned long-polls', () => {
  it('re-issues for interest growth at most once per resubscribeIntervalMs, and counts every re-issue', async () => {
    h = harness({ resubscribeIntervalMs: 2000 });
    const reissues: string[] = [];
    h.watcher.on('reissue', (reason) => reissues.push(reason));
    for (let i = 1; i <= 3; i++) h.xapi.addVif(i, 0x10, 0x20);
    h.watcher.start();
    await h.untilPolling();
    h.watcher.changeInterest(vifsOnly([uuid(1)]));
    await h.clock.advance(10);
    expect(h.watcher.stats.eventFromReissues).toBe(1);
    expect(h.xapi.poll!.classes).toContain(`vif/${ref(1)}`);
    h.watcher.changeInterest(vifsOnly([uuid(2)]));
    await h.clock.advance(10);
    h.watcher.changeInterest(vifsOnly([uuid(3)]));
    await h.clock.advance(1000);
    expect(h.watcher.stats.eventFromReissues).toBe(1);
    await h.clock.advance(1000);
    expect(h.watcher.stats.eventFromReissues).toBe(2);
    expect(h.xapi.poll!.classes).toEqual(expect.arrayContaining([`vif/${ref(2)}`, `vif/${ref(3)}`]));
    h.watcher.requestResync();
    await h.untilPolling();
    expect(reissues).toEqual(['resubscribe', 'resubscribe', 'resync']);
    expect(h.watcher.stats.eventFromReissues).toBe(3);
  });

  it('does not re-issue when the running poll already covers what was looked up', async () => {
    h = harness();
    h.watcher.start();
    await h.untilPolling();
    h.watcher.changeInterest(vifsOnly([uuid(9)])); // absent: nothing new to subscribe to
    await h.clock.advance(100);
    expect(h.watcher.cache.vif(uuid(9)).state).toBe('absent');
    expect(h.watcher.stats.eventFromReissues).toBe(0);
  });
});

describe('EventFollower: XAPI unreachable', () => {
  it('goes down, marks pending lookups unknown, and retries on the clock\'s backoff', async () => {
    h = harness({ backoff: { initialMs: 500, maxMs: 4000, factor: 2, jitter: 0 } });
    let down = true;
    h.xapi.override('pool.get_all', () => {
      if (down) throw new XapiTransportError('XAPI_TRANSPORT', 'connect ECONNREFUSED');
      return [h!.xapi.poolRef];
    });
    h.watcher.start();
    await h.clock.tick();
    expect(h.watcher.phase).toBe('down');
    h.watcher.changeInterest(vifsOnly([uuid(1)]));
    expect(h.watcher.cache.vif(uuid(1)).state).toBe('unknown');
    await h.clock.advance(499);
    expect(h.xapi.count('pool.get_all')).toBe(1);
    await h.clock.advance(1);
    expect(h.xapi.count('pool.get_all')).toBe(2);
    await h.clock.advance(999);
    expect(h.xapi.count('pool.get_all')).toBe(2);
    down = false;
    await h.clock.advance(1);
    await h.untilPolling();
    expect(h.phases).toEqual(['syncing', 'down', 'syncing', 'down', 'syncing', 'live']);
  });
});
