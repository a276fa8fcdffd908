// Exhaustive switches: `default: return unreachable(x, 'merge mode')` fails to compile when a case
// of x's literal union is missing, and still throws a clear error for values from untyped callers.
import { LightVLMError } from '../errors.js';

/** Narrows a runtime string to one of a literal list. */
export const isOneOf = <T extends string>(list: readonly T[], v: unknown): v is T => (list as readonly unknown[]).includes(v);

export function unreachable(value: never, what: string): never {
  throw new LightVLMError(`unknown ${what} "${String(value)}".`, 'E_OPTION');
}
