/**
 * The one error type users see. Every failure a user can cause is a `LightVLMError` with a stable
 * `code` (below); `message` names the problem and what to do about it. The CLI prints the message
 * without a stack trace and exits with the code's `exitCode`; a server maps `userFault` codes to 4xx.
 *
 * The set of codes is part of the public API: codes are only ever added, never renamed or removed.
 */

/** Process exit statuses of the `lightvlm` command (sysexits.h numbers where one fits). */
export const ExitCode = {
  OK: 0,
  /** A usage or input mistake: a bad flag, option, prompt, image, or a file that cannot be read or written. */
  USAGE: 2,
  /** The model folder cannot be used: broken checkpoint or config, unsupported model, non-finite numbers. */
  BAD_MODEL: 3,
  /** EX_SOFTWARE: a bug in lightvlm (please report it with LIGHTVLM_DEBUG=1). */
  INTERNAL: 70,
  /** EX_TEMPFAIL: at capacity, try again later. */
  TEMPFAIL: 75,
  /** Cancelled (128 + SIGINT, as shells report an interrupted command). */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Every error code, what it means, whose fault it is, and the CLI exit status.
 * `userFault: true` = the caller's input is wrong (a server answers it with 4xx); `false` = the
 * model on disk, the runtime or lightvlm itself is at fault (5xx).
 */
export const ERROR_CODES = {
  /** Weights unreadable: truncated/corrupt safetensors, byte ranges outside the file or overlapping, missing or mis-shaped tensors. */
  E_CHECKPOINT: { userFault: false, exitCode: ExitCode.BAD_MODEL },
  /** config.json / tokenizer / processor / chat-template files are missing, malformed or inconsistent with the weights. */
  E_CONFIG: { userFault: false, exitCode: ExitCode.BAD_MODEL },
  /** A model type, dtype or feature this engine does not support (for a request: the option cannot apply to this model). */
  E_UNSUPPORTED: { userFault: true, exitCode: ExitCode.BAD_MODEL },
  /** NaN or Infinity appeared in the model's numbers (logits, vision features): the weights or config are broken. */
  E_NONFINITE: { userFault: false, exitCode: ExitCode.BAD_MODEL },
  /** The image cannot be decoded, is too large (pixels, bytes, aspect ratio), or is not a path/Buffer/Uint8Array/PreparedImage of this model. */
  E_IMAGE: { userFault: true, exitCode: ExitCode.USAGE },
  /** The prompt is empty, not a string, contains the model's image placeholder, or the chat template cannot render it. */
  E_PROMPT: { userFault: true, exitCode: ExitCode.USAGE },
  /** The prompt (with the image tokens and the requested new tokens) does not fit the model's context or the prompt limit. */
  E_PROMPT_TOO_LONG: { userFault: true, exitCode: ExitCode.USAGE },
  /** A generation/acceleration option or CLI flag has the wrong type or is out of range. */
  E_OPTION: { userFault: true, exitCode: ExitCode.USAGE },
  /** Other bad input: unknown command, missing required flag, malformed dataset file. */
  E_INPUT: { userFault: true, exitCode: ExitCode.USAGE },
  /** A file the user named does not exist, cannot be read, or an output path cannot be written. */
  E_IO: { userFault: true, exitCode: ExitCode.USAGE },
  /** The scheduler's waiting queue is full: retry later (a server answers 429 with Retry-After). */
  E_BUSY: { userFault: false, exitCode: ExitCode.TEMPFAIL },
  /** The caller cancelled the generation (AbortSignal, or leaving a stream() loop early). */
  E_ABORTED: { userFault: true, exitCode: ExitCode.INTERRUPTED },
  /** The engine was used after dispose(). */
  E_DISPOSED: { userFault: false, exitCode: ExitCode.INTERNAL },
  /** A bug in lightvlm: please report it. */
  E_INTERNAL: { userFault: false, exitCode: ExitCode.INTERNAL },
} as const satisfies Record<string, { userFault: boolean; exitCode: ExitCode }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes by name, for `err.code === ErrorCodes.E_IMAGE` without string literals. */
export const ErrorCodes = Object.fromEntries(Object.keys(ERROR_CODES).map((k) => [k, k])) as { readonly [K in ErrorCode]: K };

/** True when `code` is the caller's mistake (a server answers it with 4xx). */
export const isUserFault = (code: ErrorCode): boolean => ERROR_CODES[code].userFault;

const LEGACY_EXIT: Record<number, ErrorCode> = { [ExitCode.INTERNAL]: 'E_INTERNAL', [ExitCode.TEMPFAIL]: 'E_BUSY', [ExitCode.INTERRUPTED]: 'E_ABORTED' };

const isCode = (x: unknown): x is ErrorCode => typeof x === 'string' && Object.hasOwn(ERROR_CODES, x);

export class LightVLMError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  /** True when the caller's input is at fault (see ERROR_CODES). */
  readonly userFault: boolean;

  /**
   * `new LightVLMError(message, code)`. The legacy `new LightVLMError(message)` means E_INPUT and a
   * number is read as an exit status (70 E_INTERNAL, 75 E_BUSY, 130 E_ABORTED); new throw sites
   * should always pass a code.
   */
  constructor(message: string, code: ErrorCode | number = 'E_INPUT', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LightVLMError';
    this.code = isCode(code) ? code : (LEGACY_EXIT[code as number] ?? 'E_INPUT');
    this.exitCode = ERROR_CODES[this.code].exitCode;
    this.userFault = ERROR_CODES[this.code].userFault;
  }

  /** True when `e` is a LightVLMError (with `code`, when given). */
  static is(e: unknown, code?: ErrorCode): e is LightVLMError {
    return e instanceof LightVLMError && (code === undefined || e.code === code);
  }
}

export const fail = (message: string, code: ErrorCode = 'E_INPUT'): never => {
  throw new LightVLMError(message, code);
};
