// Import rules of src/ (docs/architecture.md). `npm run deps` checks them and redraws the diagram;
// test/unit/imports.test.ts runs the same check in `npm test`. The layers: scripts/layers.cjs.
const LAYERS = require('./scripts/layers.cjs');
const folders = (names) => `^src/(${names.join('|')})/`;
const BACK_ARROWS = LAYERS.slice(1).map((layer, i) => ({ from: folders(layer), to: folders(LAYERS.slice(0, i + 1).flat()) }));

module.exports = {

  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle (type-only imports included) makes the layers unreadable.',
      from: {},
      to: { circular: true },
    },
    ...BACK_ARROWS.map((r) => ({
      name: 'no-back-arrow',
      severity: 'error',
      comment: 'An arrow that runs back up the layers (see docs/architecture.md).',
      from: { path: r.from },
      to: { path: r.to },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true, // type-only imports count too
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
