// Public API.
export { loadVLM, Engine, type LoadOptions } from './engine/vlm.js';
export { LightVLMError } from './errors.js';
export type * from './engine/types.js';
