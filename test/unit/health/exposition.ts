/**
 * A strict-enough checker of the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): every line is blank, a comment,
 * `# HELP name text`, `# TYPE name type`, or a sample `name{label="value",…} value [timestamp]`.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  readonly help: ReadonlyMap<string, string>;
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
// Prometheus parses values with Go's strconv.ParseFloat, which takes NaN/Inf in any letter case;
// prom-client emits `Nan` for an empty event-loop histogram.
const VALUE = '(?:[+-]?(?:[0-9]+(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?[Ii][Nn][Ff]|[Nn][Aa][Nn])';
const SAMPLE_RE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL_NAME}=${LABEL_VALUE})(?:,${LABEL_NAME}=${LABEL_VALUE})*,?)?\\})? (${VALUE})(?: -?[0-9]+)?$`,
);
const HELP_RE = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const LABEL_RE = new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, 'g');

/** Parses the text; throws naming the first line that does not fit the format. */
export function parseExposition(text: string): Exposition {
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line === '') return;
    let m: RegExpExecArray | null;
    if ((m = HELP_RE.exec(line))) {
      help.set(m[1]!, m[2]!);
    } else if ((m = TYPE_RE.exec(line))) {
      if (types.has(m[1]!)) throw new Error(`line ${i + 1}: duplicate TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
    } else if (/^# (HELP|TYPE) /.test(line)) {
      throw new Error(`line ${i + 1}: malformed ${line.slice(2, 6)} line: ${JSON.stringify(line)}`);
    } else if (line.startsWith('#')) {
      // a plain comment
    } else if ((m = SAMPLE_RE.exec(line))) {
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(LABEL_RE)) labels[l[1]!] = JSON.parse(l[2]!) as string;
      const raw = m[3]!;
      const lower = raw.toLowerCase();
      const value = lower.endsWith('inf') ? (lower.startsWith('-') ? -Infinity : Infinity) : Number(lower === 'nan' ? NaN : raw);
      samples.push({ name: m[1]!, labels, value });
    } else {
      throw new Error(`line ${i + 1} is not Prometheus text format: ${JSON.stringify(line)}`);
    }
  });
  return { help, types, samples };
}

/** The metric family a sample belongs to (histogram/summary series carry suffixes). */
export function familyOf(sampleName: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(sampleName)) return sampleName;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sampleName.endsWith(suffix)) {
      const base = sampleName.slice(0, -suffix.length);
      if (types.has(base)) return base;
    }
  }
  return undefined;
}

export function sampleValue(
  exp: Exposition,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const match = exp.samples.find(
    (s) =>
      s.name === name &&
      Object.keys(labels).length === Object.keys(s.labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return match?.value;
}
