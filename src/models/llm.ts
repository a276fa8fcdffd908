// Loads Llama / Qwen2 language-model weights from a checkpoint, whatever prefix layout it uses:
// transformers 4/5 LLaVA-style `language_model.model.*`, newer `model.language_model.*`, plain `model.*`.
import type { SafetensorsStore } from '../checkpoint/safetensors.js';
import { FileEmbedding, type EmbeddingTable } from '../checkpoint/embedding.js';
import { validateLanguageModel } from '../checkpoint/validate.js';
import { LightVLMError } from '../errors.js';
import type { DecoderLayerWeights } from '../graph/decoderStage.js';
import { lazyLinear, type LinearW } from '../graph/ops.js';
import type { TextConfig } from './config.js';

const LM_PREFIXES = ['language_model.model.', 'model.language_model.', 'model.', 'language_model.'];
const HEAD_NAMES = ['language_model.lm_head.weight', 'lm_head.weight', 'model.lm_head.weight'];

/** First prefix p among `candidates` for which `p + probe` is a tensor. */
export function findPrefix(store: SafetensorsStore, candidates: string[], probe: string, what: string): string {
  const p = candidates.find((c) => store.has(c + probe));
  if (p === undefined) {
    throw new LightVLMError(`cannot find the ${what} weights (looked for ${candidates.map((c) => c + probe).join(', ')}). Is this a supported checkpoint layout?`, 'E_CHECKPOINT');
  }
  return p;
}

/** Concatenates [out_i, in] matrices along `out` (rows): the fused q|k|v and gate|up weights. */
function stackRows(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export class LanguageModelWeights {
  readonly prefix: string;

  constructor(private readonly store: SafetensorsStore, readonly cfg: TextConfig) {
    this.prefix = findPrefix(store, LM_PREFIXES, 'embed_tokens.weight', 'language-model');
    const head = HEAD_NAMES.find((n) => store.has(n));
    if (!head && !cfg.tieEmbeddings) throw new LightVLMError('the checkpoint has no lm_head.weight and does not tie word embeddings.', 'E_CHECKPOINT');
    validateLanguageModel(store, this.prefix, head, cfg);
  }

  private f(name: string): Float32Array {
    return this.store.float(this.prefix + name).data;
  }

  private opt(name: string): Float32Array | undefined {
    return this.store.has(this.prefix + name) ? this.f(name) : undefined;
  }

  /** The whole table widened to fp32 [V, D] (a tied LM head built from it). */
  embedding(): Float32Array {
    return this.f('embed_tokens.weight'); // [V, D]
  }

  /** The table for lookups: rows read from the checkpoint file on demand, nothing held in memory. */
  embeddingTable(): EmbeddingTable {
    return new FileEmbedding(this.store.entries.get(this.prefix + 'embed_tokens.weight')!);
  }

  finalNorm(): Float32Array {
    return this.f('norm.weight');
  }

  lmHead(): LinearW {
    const { vocab: V, hidden: D } = this.cfg;
    const name = HEAD_NAMES.find((n) => this.store.has(n));
    if (!name) {
      if (!this.cfg.tieEmbeddings) throw new LightVLMError('the checkpoint has no lm_head.weight and does not tie word embeddings.', 'E_CHECKPOINT');
      return lazyLinear(this.prefix + 'embed_tokens.weight', () => this.embedding(), V, D);
    }
    return lazyLinear(name, () => this.store.float(name).data, V, D);
  }

  /**
   * One decoder layer. Linear weights are read (and q|k|v, gate|up stacked) only when a graph
   * builder touches `.w`: a quantized build served from the disk cache never reads them.
   */
  layer(l: number): DecoderLayerWeights {
    const { hidden: D, heads: H, kvHeads: Hkv, headDim: dh, intermediate: I } = this.cfg;
    const p = `layers.${l}.`;
    const t = (n: string) => this.prefix + p + n;
    const qb = this.opt(p + 'self_attn.q_proj.bias');
    const bias = qb ? stackRows([qb, this.f(p + 'self_attn.k_proj.bias'), this.f(p + 'self_attn.v_proj.bias')]) : undefined;
    const qkv = lazyLinear(t('self_attn.qkv'), () => stackRows(['q', 'k', 'v'].map((x) => this.f(`${p}self_attn.${x}_proj.weight`))), (H + 2 * Hkv) * dh, D, bias);
    const ob = this.opt(p + 'self_attn.o_proj.bias');
    const gb = this.opt(p + 'mlp.gate_proj.bias');
    const db = this.opt(p + 'mlp.down_proj.bias');
    return {
      inputNorm: this.f(p + 'input_layernorm.weight'),
      postNorm: this.f(p + 'post_attention_layernorm.weight'),
      qkv,
      o: lazyLinear(t('self_attn.o_proj'), () => this.f(p + 'self_attn.o_proj.weight'), D, H * dh, ob),
      gateUp: lazyLinear(
        t('mlp.gate_up'),
        () => stackRows([this.f(p + 'mlp.gate_proj.weight'), this.f(p + 'mlp.up_proj.weight')]),
        2 * I,
        D,
        gb ? stackRows([gb, this.f(p + 'mlp.up_proj.bias')]) : undefined,
      ),
      down: lazyLinear(t('mlp.down_proj'), () => this.f(p + 'mlp.down_proj.weight'), D, I, db),
    };
  }
}
