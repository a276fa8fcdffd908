// The non-finite guard: NaN or ±Infinity in logits or vision features means the weights or the
// config are broken (a NaN weight, a negative eps); generating from them would print garbage with
// exit 0. One pass over a row is cheap next to the matmuls that produced it.
import { LightVLMError } from '../errors.js';

/** Index of the first NaN/±Inf in `x`, or −1. */
export function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** Throws E_NONFINITE naming `where` when `x` holds a NaN or an infinity. */
export function assertFinite(x: Float32Array, where: string): void {
  const i = firstNonFinite(x);
  if (i >= 0) {
    throw new LightVLMError(
      `${where} hold ${x[i]} (value ${i} of ${x.length}): the model's weights or config produce non-finite numbers. ` +
        'Check the checkpoint for NaN/Inf weights (re-download it) and config.json for invalid values such as a non-positive rms_norm_eps.',
      'E_NONFINITE',
    );
  }
}
