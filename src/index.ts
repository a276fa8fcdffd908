// Public API.
export { loadVLM, Engine, type LoadOptions } from './engine/vlm.js';
export { LightVLMError, ERROR_CODES, ErrorCodes, ExitCode, isUserFault, type ErrorCode } from './errors.js';
export { demoModelPath, demoImagePath } from './paths.js';
export type * from './engine/types.js';
