import { OvsdbError } from './errors.js';

/** Default cap on one incoming message: ovsdb-server 3.1 has none of its own (docs/ovsdb.md §1). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** ovsdb-server rejects deeper nesting (`JSON_MAX_HEIGHT`, docs/ovsdb.md §1); so do we. */
export const DEFAULT_MAX_DEPTH = 1000;

export interface FramingOptions {
  readonly maxMessageBytes?: number;
  readonly maxDepth?: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Splits a byte stream of concatenated top-level JSON objects, the only framing JSON-RPC 1.0 has on an
 * OVSDB connection (no delimiter, no length prefix: docs/ovsdb.md §1, RFC 7047 §4).
 *
 * The scan tracks nesting depth and string/escape state on bytes, so a multi-byte UTF-8 character or an
 * escape split across chunks is harmless (every byte of a multi-byte sequence is >= 0x80 and cannot be
 * mistaken for a structural character). Each complete message is decoded with one `JSON.parse`.
 *
 * `push` throws `OvsdbError` `OVSDB_PROTOCOL` (malformed JSON, a top-level value that is not an object,
 * nesting deeper than `maxDepth`) or `OVSDB_MESSAGE_TOO_LARGE`. After a throw the splitter is unusable:
 * the stream position is lost, and the caller must drop the connection.
 */
export class JsonMessageSplitter {
  private readonly maxMessageBytes: number;
  private readonly maxDepth: number;
  /** Earlier chunks' pieces of the message being assembled. */
  private pieces: Buffer[] = [];
  private pieceBytes = 0;
  private inMessage = false;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private failed: OvsdbError | undefined;

  constructor(options: FramingOptions = {}) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  /** Bytes held for an incomplete message. */
  get bufferedBytes(): number {
    return this.pieceBytes;
  }

  /** Feeds one chunk; returns the messages it completed, in order. */
  push(chunk: Buffer): Record<string, unknown>[] {
    if (this.failed) throw this.failed;
    try {
      return this.scan(chunk);
    } catch (err) {
      this.failed =
        err instanceof OvsdbError ? err : new OvsdbError('OVSDB_PROTOCOL', 'malformed JSON message', { cause: err });
      throw this.failed;
    }
  }

  private scan(chunk: Buffer): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const len = chunk.length;
    let start = 0;
    let i = 0;
    let depth = this.depth;
    let inString = this.inString;
    let escaped = this.escaped;
    let inMessage = this.inMessage;
    while (i < len) {
      if (!inMessage) {
        const b = chunk[i] as number;
        if (isSpace(b)) {
          i++;
          continue;
        }
        if (b !== OPEN_BRACE) {
          const what = b === OPEN_BRACKET ? 'a JSON array' : `byte 0x${b.toString(16).padStart(2, '0')}`;
          throw new OvsdbError('OVSDB_PROTOCOL', `message is not a JSON object (starts with ${what})`);
        }
        inMessage = true;
        depth = 1;
        start = i;
        i++;
        continue;
      }
      // Hot loop: one message body. Kept free of calls for speed on multi-megabyte monitor replies.
      for (; i < len; i++) {
        const b = chunk[i] as number;
        if (inString) {
          if (escaped) escaped = false;
          else if (b === BACKSLASH) escaped = true;
          else if (b === QUOTE) inString = false;
        } else if (b === QUOTE) {
          inString = true;
        } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
          if (++depth > this.maxDepth) {
            throw new OvsdbError('OVSDB_PROTOCOL', `message exceeds the maximum nesting depth ${this.maxDepth}`);
          }
        } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
          if (--depth === 0) break;
        }
      }
      if (i === len) break;
      // chunk[i] closed the message.
      const end = i + 1;
      const size = this.pieceBytes + end - start;
      if (size > this.maxMessageBytes) throw this.tooLarge(size);
      let text: string;
      if (this.pieces.length === 0) {
        text = chunk.toString('utf8', start, end);
      } else {
        this.pieces.push(chunk.subarray(start, end));
        text = Buffer.concat(this.pieces, size).toString('utf8');
        this.pieces = [];
        this.pieceBytes = 0;
      }
      out.push(parseObject(text));
      inMessage = false;
      i = end;
    }
    if (inMessage) {
      const piece = chunk.subarray(start);
      if (this.pieceBytes + piece.length > this.maxMessageBytes) throw this.tooLarge(this.pieceBytes + piece.length);
      // Copy only when the tail is a small part of a large chunk, so a retained piece does not pin it.
      this.pieces.push(piece.length * 4 < chunk.length ? Buffer.from(piece) : piece);
      this.pieceBytes += piece.length;
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    this.inMessage = inMessage;
    return out;
  }

  private tooLarge(size: number): OvsdbError {
    return new OvsdbError(
      'OVSDB_MESSAGE_TOO_LARGE',
      `incoming message exceeds the size cap of ${this.maxMessageBytes} bytes (at least ${size} bytes)`,
    );
  }
}

function parseObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const sample = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    throw new OvsdbError('OVSDB_PROTOCOL', `malformed JSON message: ${JSON.stringify(sample)}`, { cause: err });
  }
  // Balanced braces starting with "{" that parse are an object; checked anyway for the type system.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OvsdbError('OVSDB_PROTOCOL', 'message is not a JSON object');
  }
  return value as Record<string, unknown>;
}
