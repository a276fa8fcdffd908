// Layers of src/, from the top. A module may import from its own layer and the layers below it;
// an import from a layer above is a back arrow. src/index.ts sits on top; src/errors.ts and util/
// at the bottom. Used by .dependency-cruiser.cjs (the rules) and scripts/imports.mjs (the diagram).
module.exports = [
  ['cli'],                                          // commands
  ['server', 'eval', 'bench', 'report'],            // HTTP serving, and measurement on the public VLM interface (npm run load drives the server)
  ['engine'],                                       // runs plans: prefill / decode steps, scheduler, sessions
  ['vitmerge'],                                     // token merging inside the vision tower
  ['models'],                                       // one module per family: config + weights → graphs
  ['merge', 'kvcache'],                             // policies: pure selections + their plans / controllers
  ['graph', 'runtime', 'checkpoint', 'processing'], // ONNX building, ORT, safetensors, images and prompts
  ['util'],
];
