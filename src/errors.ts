/**
 * The one error type users see. `message` names the problem and what to do about it;
 * the CLI prints it without a stack trace and exits with `exitCode`.
 */
export class LightVLMError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'LightVLMError';
    this.exitCode = exitCode;
  }
}

export const fail = (message: string): never => {
  throw new LightVLMError(message);
};
