import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { formatLine, LEVELS, parseLevel } from './format.js';

/**
 * `ovs-xapi-sync logs [-f] [--since WHEN] [--level LEVEL]`: the unit's journal, readable (issue 15).
 * Runs `journalctl -u ovs-xapi-sync -o cat --no-pager` (with `-f` and `--since` passed through, so
 * `--since` takes whatever journalctl accepts: "1 hour ago", "today", "2026-12-07 10:00"), formats each
 * line with ./format.ts and exits with journalctl's status. Exit 2: a bad option.
 */

const UNIT = 'ovs-xapi-sync';

export const LOGS_USAGE = `usage: ovs-xapi-sync logs [-f|--follow] [--since WHEN] [--level ${Object.keys(LEVELS).join('|')}]
  Shows the daemon's journal (journalctl -u ${UNIT}) in readable form. Lines that are not the
  daemon's JSON (crash traces, systemd's own messages) are shown unchanged, whatever --level says.`;

export interface LogsOptions {
  readonly follow: boolean;
  readonly since: string | undefined;
  readonly minLevel: number;
}

export type LogsArgs = { readonly kind: 'run'; readonly options: LogsOptions } | { readonly kind: 'help' } | { readonly kind: 'error'; readonly message: string };

/** Parses the arguments after `logs`. */
export function parseLogsArgs(argv: readonly string[]): LogsArgs {
  let follow = false;
  let since: string | undefined;
  let minLevel = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const [name, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (name) {
      case '-f':
      case '--follow':
        follow = true;
        break;
      case '--since': {
        since = value();
        if (since === undefined || since === '') return { kind: 'error', message: 'logs: --since needs a value' };
        break;
      }
      case '--level': {
        const v = value();
        const level = v === undefined ? undefined : parseLevel(v);
        if (level === undefined) return { kind: 'error', message: `logs: --level must be one of ${Object.keys(LEVELS).join(', ')} (got ${JSON.stringify(v ?? '')})` };
        minLevel = level;
        break;
      }
      case '-h':
      case '--help':
        return { kind: 'help' };
      default:
        return { kind: 'error', message: `logs: unknown option ${JSON.stringify(arg)}` };
    }
  }
  return { kind: 'run', options: { follow, since, minLevel } };
}

/** The journalctl command line for `options`. */
export function journalctlArgs(options: LogsOptions): string[] {
  return ['-u', UNIT, '-o', 'cat', '--no-pager', ...(options.follow ? ['-f'] : []), ...(options.since !== undefined ? ['--since', options.since] : [])];
}

/** Runs `logs`; resolves with the exit code. */
export async function runLogs(argv: readonly string[]): Promise<number> {
  const parsed = parseLogsArgs(argv);
  if (parsed.kind === 'help') {
    process.stdout.write(`${LOGS_USAGE}\n`);
    return 0;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`${parsed.message}\n${LOGS_USAGE}\n`);
    return 2;
  }
  const { minLevel } = parsed.options;
  const child = spawn('journalctl', journalctlArgs(parsed.options), { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number>((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`logs: cannot run journalctl: ${err.message}\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => {
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
  // A reader that has gone (`logs | head`) ends the view, and journalctl with it.
  process.stdout.on('error', () => {
    child.kill();
  });
  try {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
      const text = formatLine(line, minLevel);
      if (text !== undefined && !process.stdout.write(`${text}\n`)) await once(process.stdout, 'drain');
    }
  } catch {
    child.kill();
  }
  return exited;
}
