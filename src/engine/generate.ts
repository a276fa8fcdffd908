// One request, start to end: a short loop over the steps in step.ts.
import type { LmPrompt } from '../processing/lmPrompt.js';
import { decodeStep, finish, prefill, startSequence, type GenerateHooks, type LmContext } from './step.js';
import type { GenerateOptions, GenerateResult } from './types.js';

export type { GenerateHooks, LmContext } from './step.js';

export async function generate(ctx: LmContext, prompt: LmPrompt, opts: GenerateOptions, hooks: GenerateHooks = {}): Promise<GenerateResult> {
  const seq = await startSequence(ctx, prompt, opts, hooks);
  await prefill(seq);
  while (seq.phase !== 'done') await decodeStep(seq);
  return finish(seq);
}
