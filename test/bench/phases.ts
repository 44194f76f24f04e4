import type { LogLine } from '../helpers/host-env.js';
import type { OvsdbMessage, ProcSampler, XapiCallRecord } from './timeline.js';

/** One stretch of the cold start, between two marks on its critical path. */
export interface PhaseFigure {
  readonly phase: string;
  /** Start and end, ms since the daemon was spawned. */
  readonly fromMs: number;
  readonly toMs: number;
  readonly ms: number;
  readonly daemonCpuMs: number;
  readonly ovsdbServerCpuMs: number;
  readonly xapiCalls: number;
  readonly xapiKib: number;
  /** Time with at least one XAPI call (other than event.from) in flight. */
  readonly xapiBusyMs: number;
  /** Bytes between the daemon and ovsdb-server, both ways. */
  readonly ovsdbKib: number;
  readonly rssEndMb: number;
}

export interface ColdStartBreakdown {
  readonly phases: PhaseFigure[];
  /** Other moments (ms since spawn): the OVSDB monitor, the process up, … */
  readonly marks: Readonly<Record<string, number>>;
  readonly transactions: number;
  /** Transactions of the big write (1, or its pipelined chunks). */
  readonly writeTransactions: number;
  /** The big write's bytes, all its transactions together. */
  readonly bigTransactionKib: number;
  readonly bigTransactionRows: number | undefined;
  /** The updates ovsdb-server sends the daemon for the daemon's own big write. */
  readonly echoKib: number;
  /** ovsdb-server: last byte of the big write in → first byte of its last reply out. */
  readonly commitMs: number;
  readonly ovsdbKibToServer: number;
  readonly ovsdbKibToDaemon: number;
  /** XAPI calls of the cold start by method: count, KiB both ways, summed call time (ms). */
  readonly xapiByMethod: Readonly<Record<string, { calls: number; kib: number; ms: number }>>;
}

const r1 = (n: number): number => Math.round(n * 10) / 10;

/** Epoch ms of a pino line → the bench's performance clock. */
function logAt(line: LogLine | undefined): number | undefined {
  return typeof line?.time === 'number' ? line.time - performance.timeOrigin : undefined;
}

function busy(calls: readonly XapiCallRecord[], from: number, to: number): number {
  const spans = calls
    .filter((c) => c.method !== 'event.from' && Number.isFinite(c.end))
    .map((c) => [Math.max(from, c.start), Math.min(to, c.end)] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let cursor = from;
  for (const [a, b] of spans) {
    const start = Math.max(a, cursor);
    if (b > start) total += b - start;
    cursor = Math.max(cursor, b);
  }
  return total;
}

/**
 * Cuts the cold start (`spawnAt` → `convergedAt`, bench clock) into phases on its critical path:
 * process start, XAPI login, the initial sync (until the daemon logs its snapshot; it includes the
 * lookups of the objects the OVSDB monitor had named by then), later lookups, the reconcile (last lookup answered → first byte of the big transaction), the
 * transaction on the wire, ovsdb-server's commit, and the publication to the bench's monitor. A mark
 * the run did not produce is left out and its phase merges with the next.
 */
export function coldStartBreakdown(input: {
  readonly spawnAt: number;
  readonly convergedAt: number;
  readonly logs: readonly LogLine[];
  readonly calls: readonly XapiCallRecord[];
  readonly messages: readonly OvsdbMessage[];
  readonly procs: ProcSampler;
}): ColdStartBreakdown {
  const { spawnAt, convergedAt, logs, procs } = input;
  const calls = input.calls.filter((c) => c.start >= spawnAt && c.start <= convergedAt);
  const messages = input.messages.filter((m) => m.first >= spawnAt && m.first <= convergedAt);
  const transacts = messages.filter((m) => m.dir === 'toServer' && m.method === 'transact');
  const biggest = transacts.reduce<OvsdbMessage | undefined>((a, m) => (a === undefined || m.bytes > a.bytes ? m : a), undefined);
  // The write: the biggest transaction and the chunks sent with it in one burst (the daemon pipelines a
  // large pass as transactions of 250 rows; docs/ovsdb.md §7).
  const write = biggest === undefined ? [] : burstAround(transacts.filter((m) => m.conn === biggest.conn), biggest);
  const big = write[0];
  const lastChunk = write.at(-1);
  // The reply (and the daemon's echo of its own write) may come after the bench's monitor saw every row.
  const reply = lastChunk === undefined ? undefined : input.messages.find((m) => m.dir === 'toClient' && m.conn === lastChunk.conn && m.id === lastChunk.id && m.method === undefined);
  const echoes = big === undefined ? [] : input.messages.filter((m) => m.dir === 'toClient' && m.conn === big.conn && m.first >= big.last && m.method?.startsWith('update') === true && (reply === undefined || m.first <= reply.first));
  const echo = echoes[0] === undefined ? undefined : { first: echoes[0].first, last: echoes.at(-1)!.last, bytes: echoes.reduce((t, m) => t + m.bytes, 0) };
  const lookupsDone = calls.filter((c) => c.method !== 'event.from' && (big === undefined || c.end <= big.first)).reduce((t, c) => Math.max(t, c.end), Number.NEGATIVE_INFINITY);
  const log = (msg: string): number | undefined => logAt(logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith(msg)));
  const monitorReq = messages.find((m) => m.dir === 'toServer' && m.method?.startsWith('monitor') === true);
  const monitorReply = monitorReq === undefined ? undefined : messages.find((m) => m.dir === 'toClient' && m.conn === monitorReq.conn && m.id === monitorReq.id);
  const updated = logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('updated ') && typeof l.count === 'number' && (logAt(l) ?? 0) >= (big?.first ?? 0));

  const critical: [string, number | undefined][] = [
    ['process start → first XAPI call', calls[0]?.start],
    ['XAPI login', calls.find((c) => c.method === 'session.login_with_password')?.end],
    ['initial sync (+ lookups known by then)', log('XAPI snapshot fetched')],
    ['lookups after the initial sync', Number.isFinite(lookupsDone) ? lookupsDone : undefined],
    ['reconcile → transaction built', big?.first],
    ['transaction on the wire', lastChunk?.last],
    ['ovsdb-server commit', reply !== undefined && reply.first <= convergedAt ? reply.first : undefined],
    [reply !== undefined && reply.first <= convergedAt ? 'reply → bench monitor has every row' : 'ovsdb-server commit + publish → bench monitor has every row', convergedAt],
  ];
  const phases: PhaseFigure[] = [];
  let from = spawnAt;
  for (const [phase, to] of critical) {
    if (to === undefined || to < from) continue;
    const a = procs.at(from);
    const b = procs.at(to);
    const inPhase = calls.filter((c) => c.start >= from && c.start < to);
    phases.push({
      phase,
      fromMs: r1(from - spawnAt),
      toMs: r1(to - spawnAt),
      ms: r1(to - from),
      daemonCpuMs: Math.round((b.daemonCpu - a.daemonCpu) * 1000),
      ovsdbServerCpuMs: Math.round((b.serverCpu - a.serverCpu) * 1000),
      xapiCalls: inPhase.length,
      xapiKib: r1(inPhase.reduce((s, c) => s + c.bytesIn + c.bytesOut, 0) / 1024),
      xapiBusyMs: r1(busy(calls, from, to)),
      ovsdbKib: r1(messages.filter((m) => m.first >= from && m.first < to).reduce((s, m) => s + m.bytes, 0) / 1024),
      rssEndMb: r1(b.daemonRss),
    });
    from = to;
  }
  const marks: Record<string, number> = {};
  const mark = (name: string, at: number | undefined): void => {
    if (at !== undefined) marks[name] = r1(at - spawnAt);
  };
  mark('daemon logs "starting"', log('starting'));
  mark('OVSDB monitor sent', monitorReq?.first);
  mark('OVSDB monitor reply received', monitorReply?.last);
  mark('XAPI session established', log('XAPI session established'));
  mark('daemon gets the echo of its write (first byte)', echo?.first);
  mark('daemon gets the echo of its write (last byte)', echo?.last);
  mark('daemon gets the commit reply', reply?.last);
  mark('daemon logs "updated"', logAt(updated));
  const xapiByMethod: Record<string, { calls: number; kib: number; ms: number }> = {};
  for (const c of calls) {
    const m = (xapiByMethod[c.method] ??= { calls: 0, kib: 0, ms: 0 });
    m.calls += 1;
    m.kib = r1(m.kib + (c.bytesIn + c.bytesOut) / 1024);
    if (Number.isFinite(c.end)) m.ms = r1(m.ms + c.end - c.start);
  }
  const kib = (dir: OvsdbMessage['dir']): number => r1(messages.filter((m) => m.dir === dir).reduce((s, m) => s + m.bytes, 0) / 1024);
  return {
    phases,
    marks,
    transactions: transacts.length,
    writeTransactions: write.length,
    bigTransactionKib: r1(write.reduce((t, m) => t + m.bytes, 0) / 1024),
    echoKib: r1((echo?.bytes ?? 0) / 1024),
    bigTransactionRows: typeof updated?.count === 'number' ? updated.count : undefined,
    commitMs: lastChunk !== undefined && reply !== undefined ? r1(reply.first - lastChunk.last) : Number.NaN,
    ovsdbKibToServer: kib('toServer'),
    ovsdbKibToDaemon: kib('toClient'),
    xapiByMethod,
  };
}

/** `anchor` and the messages sent right before and after it (gaps under 50 ms: each chunk is stringified and written in turn), in order. */
function burstAround(sent: readonly OvsdbMessage[], anchor: OvsdbMessage): OvsdbMessage[] {
  const sorted = [...sent].sort((a, b) => a.first - b.first);
  let lo = sorted.indexOf(anchor);
  let hi = lo;
  while (lo > 0 && sorted[lo]!.first - sorted[lo - 1]!.last < 50) lo--;
  while (hi + 1 < sorted.length && sorted[hi + 1]!.first - sorted[hi]!.last < 50) hi++;
  return sorted.slice(lo, hi + 1);
}

/** A fixed-width table of the phases, for the bench's printout. */
export function phaseTable(name: string, b: ColdStartBreakdown): string {
  const header = ['phase', 'from', 'to', 'ms', 'daemon CPU ms', 'ovsdb-server CPU ms', 'XAPI calls', 'XAPI KiB', 'XAPI busy ms', 'OVSDB KiB', 'RSS MB'];
  const lines = [
    header,
    ...b.phases.map((p) => [p.phase, p.fromMs, p.toMs, p.ms, p.daemonCpuMs, p.ovsdbServerCpuMs, p.xapiCalls, p.xapiKib, p.xapiBusyMs, p.ovsdbKib, p.rssEndMb].map(String)),
  ];
  const widths = header.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (l: readonly string[]): string => l.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const marks = Object.entries(b.marks).map(([k, v]) => `${k} ${v} ms`).join('; ');
  return [
    `${name}: cold start by phase (ms since the daemon was spawned)`,
    fmt(header),
    ...lines.slice(1).map(fmt),
    `  marks: ${marks}`,
    `  XAPI by method (calls, KiB, summed ms): ${Object.entries(b.xapiByMethod)
      .sort((x, y) => y[1].kib - x[1].kib)
      .map(([m, v]) => `${m} ${v.calls}/${v.kib}/${v.ms}`)
      .join(', ')}`,
    `  ${b.transactions} transaction(s); the big write ${b.bigTransactionKib} KiB in ${b.writeTransactions} pipelined transaction(s)${b.bigTransactionRows !== undefined ? `, ${b.bigTransactionRows} rows` : ''}, committed by ovsdb-server ${b.commitMs} ms after its last byte (→ first byte of the last reply out), echoed to the daemon as ${b.echoKib} KiB of updates; OVSDB bytes ${b.ovsdbKibToServer} KiB to the server, ${b.ovsdbKibToDaemon} KiB to the daemon`,
  ].join('\n');
}
