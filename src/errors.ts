/**
 * Typed errors. Library code throws these and never prints or exits; the CLI maps each code to one
 * line on stderr and a non-zero exit status (see src/commands/base.ts).
 */
import { escapeText } from './report/escape';

export type ErrorCode =
  | 'E_NOT_ONNX' // bytes are not an onnx.ModelProto
  | 'E_TRUNCATED' // a message or field runs past the end of the bytes
  | 'E_EMPTY' // zero-length file
  | 'E_EXTERNAL_DATA' // a sidecar file is missing or shorter than offset + length
  | 'E_TOO_LARGE' // a model too large for one protobuf message (2 GiB)
  | 'E_SHAPE' // shapes that cannot fit together
  | 'E_GRAPH' // structural problem: cycle, dangling input, duplicate name
  | 'E_IO' // file system problem: unreadable input, unwritable output
  | 'E_ARG' // a bad option value
  | 'E_RULE' // a rule file that does not validate
  | 'E_PATTERN' // a block that no rule recognises (under --strict), or no block to convert
  | 'E_SCHEMA' // a report that does not match its schema (a bug, not a user error)
  | 'E_ORT' // ONNX Runtime refused the model or the session options
  | 'E_EP' // an execution provider that the installed binding lacks
  | 'E_VERIFY'; // a conversion that must be exact (PRN) is not

export class GptError extends Error {
  readonly code: ErrorCode;
  /** The file, node or tensor the error is about, when there is one. */
  readonly subject?: string;
  /** How to fix it, when we know. */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: { subject?: string; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GptError';
    this.code = code;
    this.subject = opts.subject;
    this.hint = opts.hint;
  }

  /** One line: "<subject>: <message> (<hint>)", control characters from names escaped. */
  oneLine(): string {
    const head = this.subject ? `${this.subject}: ${this.message}` : this.message;
    return escapeText(this.hint ? `${head} (${this.hint})` : head);
  }
}

export function isGptError(e: unknown): e is GptError {
  return e instanceof GptError;
}
