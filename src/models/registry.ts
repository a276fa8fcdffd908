// model_type → family module. Each family reads its own HF config; the engine does the rest.
import fs from 'node:fs';
import path from 'node:path';
import { openCheckpoint } from '../checkpoint/safetensors.js';
import { LightVLMError } from '../errors.js';
import { readJsonFile, readModelConfig, type Json } from './config.js';
import type { Family } from './family.js';
import { createInternVL } from './internvl.js';
import { createLlava } from './llava.js';
import { createQwen2VL } from './qwen2vl.js';

type Factory = (cfg: Json, store: ReturnType<typeof openCheckpoint>, processorCfg: Json) => Family;

const FAMILIES: Record<string, Factory> = {
  llava: createLlava,
  internvl: createInternVL,
  qwen2_vl: createQwen2VL,
};

export const SUPPORTED_MODEL_TYPES = (): string[] => Object.keys(FAMILIES);

export function registerFamily(modelType: string, factory: Factory): void {
  FAMILIES[modelType] = factory;
}

/** Processor settings: transformers 5 nests them in processor_config.json, 4 writes preprocessor_config.json. */
export function readProcessorConfig(dir: string): Json {
  const pre = path.join(dir, 'preprocessor_config.json');
  const proc = path.join(dir, 'processor_config.json');
  const out: Json = {};
  if (fs.existsSync(proc)) Object.assign(out, readJsonFile(proc, 'processor settings'));
  if (fs.existsSync(pre)) out.image_processor = { ...(out.image_processor ?? {}), ...readJsonFile(pre, 'image processor settings') };
  if (!out.image_processor) throw new LightVLMError(`no image processor settings in ${dir}: expected preprocessor_config.json or processor_config.json.`, 'E_CONFIG');
  return out;
}

export function openFamily(dir: string): Family {
  const cfg = readModelConfig(dir);
  const type = cfg.model_type;
  const factory = FAMILIES[type];
  if (!factory) {
    throw new LightVLMError(`unsupported model_type "${type}" in ${path.join(dir, 'config.json')}. Supported: ${SUPPORTED_MODEL_TYPES().join(', ')}.`, 'E_UNSUPPORTED');
  }
  return factory(cfg, openCheckpoint(dir), readProcessorConfig(dir));
}
