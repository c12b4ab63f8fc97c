// The layering of src/, checked by oxlint (`npm run lint:layers`, and in
// `npm test` by test/unit/layering.test.ts).
//
// Layers, lowest first; a module imports from its own layer or lower ones:
//
//   core, layer 1   constants.ts, errors.ts, defaults.ts (import only each other)
//                   codec/ < frame/ < protocol/
//                   transport.ts, call-options.ts, dispatcher.ts (the contracts)
//   core, layer 2   peer/
//   core, layer 3   schema.ts, validate.ts, service.ts
//   core, layer 4   server/, client/                  (not each other)
//                   conformance/ (the conformance service and runner)
//   core, layer 5   relay/ (may import server/), index.ts
//   node/           may import core; only node/bridge.ts imports ws
//   browser/        may import core (and nothing of Node)
//   cli/, index.ts  may import node/ and core (not each other)
//
// core imports nothing from node/ or cli/, no Node builtin and no package
// but @standard-schema/spec (types only). Node's globals are kept out of
// core by its own compile (tsconfig.core.json: no Node types), not here.
//
// How: every group of files below lists the imports it may make, as globs on
// the import specifier written relative to those files; any other import is
// an error. Type-only imports (`import type`, `export type ... from`) count
// like any other. A file that no group covers (a new folder, say) may import
// nothing until it is placed in a layer here. No cycles anywhere in src/,
// type-only ones included.

// Import paths not in their plain form: a `.` or `..` segment after a named
// one (`../core/../cli/x.js`), `./..`, `././`, `//`. The allowed globs of a
// group match paths as written, so these are forbidden everywhere to keep
// them exact (they come last in each group: its last matching glob decides).
const NOT_PLAIN = ['./.', './..', '././**', './../**', '**/[!.]*/.', '**/[!.]*/..', '**/[!.]*/./**', '**/[!.]*/../**', '**/../.', '**/.././**', '**//**'];

/** The rule for a group of files: only the imports that match `allowed`. */
function only(allowed, message) {
  const group = ['*', ...allowed.map((glob) => `!${glob}`), ...NOT_PLAIN];
  return ['error', { patterns: [{ group, caseSensitive: true, message }] }];
}

// Layer 1 of core, as seen from core/ itself and from one folder below it.
const LAYER1_FROM_CORE = ['./constants.js', './errors.js', './codec/**', './frame/**', './protocol/**', './transport.js', './call-options.js', './dispatcher.js'];
const LAYER1_FROM_SUBFOLDER = LAYER1_FROM_CORE.map((glob) => `.${glob}`);
const LAYER3_FROM_SUBFOLDER = ['../schema.js', '../validate.js', '../service.js'];

export default {
  plugins: ['import', 'typescript'],
  categories: { correctness: 'off' },
  rules: {
    // No import cycles in src/, counting type-only imports.
    'import/no-cycle': ['error', { ignoreTypes: false }],
    // No `import('...')` in type positions: the group rules below do not see
    // that form, so it is kept out of src/. (The same rule also asks for
    // `import type` where an import is used only as a type.)
    'typescript/consistent-type-imports': ['error', { disallowTypeAnnotations: true }],
  },
  overrides: [
    {
      // Any file of src/ that no group below covers: it imports nothing until placed in a layer.
      files: ['src/**'],
      rules: { 'no-restricted-imports': only([], 'This file is in no layer: add it to a group in oxlint.layers.config.mjs.') },
    },
    {
      // The bottom of core: constants and errors.
      files: ['src/core/constants.ts', 'src/core/errors.ts', 'src/core/defaults.ts'],
      rules: { 'no-restricted-imports': only(['./constants.js', './errors.js'], 'core/constants.ts, errors.ts and defaults.ts are the bottom layer: they import only each other.') },
    },
    {
      files: ['src/core/codec/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../constants.js', '../errors.js'], 'codec/ imports only itself, constants and errors.') },
    },
    {
      files: ['src/core/frame/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../constants.js', '../errors.js', '../codec/**'], 'frame/ imports only itself, codec/, constants and errors.') },
    },
    {
      files: ['src/core/protocol/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../constants.js', '../errors.js', '../codec/**', '../frame/**'], 'protocol/ imports only itself, codec/, frame/, constants and errors.') },
    },
    {
      // The contracts both sides import: they sit on top of layer 1.
      files: ['src/core/transport.ts', 'src/core/call-options.ts', 'src/core/dispatcher.ts'],
      rules: { 'no-restricted-imports': only(LAYER1_FROM_CORE, 'The contracts (transport, call-options, dispatcher) import only layer 1 of core.') },
    },
    {
      files: ['src/core/peer/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', ...LAYER1_FROM_SUBFOLDER], 'peer/ (layer 2) imports only itself and layer 1 of core.') },
    },
    {
      files: ['src/core/schema.ts', 'src/core/validate.ts', 'src/core/service.ts'],
      rules: {
        'no-restricted-imports': only(
          [...LAYER1_FROM_CORE, './peer/**', './schema.js', './validate.js', './service.js', '@standard-schema/spec'],
          'schema, validate and service (layer 3) import only each other, peer/ and layer 1 of core.',
        ),
      },
    },
    {
      files: ['src/core/server/*.ts'],
      rules: {
        'no-restricted-imports': only(
          ['./**', ...LAYER1_FROM_SUBFOLDER, '../peer/**', ...LAYER3_FROM_SUBFOLDER, '@standard-schema/spec'],
          'server/ (layer 4) imports only itself and layers 1-3 of core: not client/, not core/index.ts.',
        ),
      },
    },
    {
      files: ['src/core/client/*.ts'],
      rules: {
        'no-restricted-imports': only(
          ['./**', ...LAYER1_FROM_SUBFOLDER, '../peer/**', ...LAYER3_FROM_SUBFOLDER, '@standard-schema/spec'],
          'client/ (layer 4) imports only itself and layers 1-3 of core: not server/, not core/index.ts.',
        ),
      },
    },
    {
      // The conformance service and the runner of the conformance vectors: beside server/ and client/, using neither.
      files: ['src/core/conformance/*.ts'],
      rules: {
        'no-restricted-imports': only(
          ['./**', ...LAYER1_FROM_SUBFOLDER, ...LAYER3_FROM_SUBFOLDER],
          'conformance/ (layer 4) imports only itself and layers 1 and 3 of core.',
        ),
      },
    },
    {
      files: ['src/core/relay/*.ts'],
      rules: {
        'no-restricted-imports': only(
          ['./**', ...LAYER1_FROM_SUBFOLDER, '../peer/**', '../server/**'],
          'relay/ (layer 5) imports only itself, server/ (its refusals and limits), peer/ and layer 1 of core: not client/, not core/index.ts.',
        ),
      },
    },
    {
      files: ['src/core/index.ts'],
      rules: { 'no-restricted-imports': only(['./**'], 'core/index.ts imports only core.') },
    },
    {
      files: ['src/node/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../core/**', 'node:*', 'node:*/**'], 'node/ imports only itself, core and Node builtins: not cli/, not src/index.ts.') },
    },
    {
      // The WebSocket bridge alone loads the ws package: nothing else pulls it in.
      files: ['src/node/bridge.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../core/**', 'node:*', 'node:*/**', 'ws'], 'node/bridge.ts imports only node/, core, Node builtins and ws.') },
    },
    {
      // The browser entry: the platform-free core and nothing else (no Node builtin, no package).
      files: ['src/browser/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../core/**'], 'browser/ imports only itself and core: no Node builtin, no package.') },
    },
    {
      files: ['src/cli/*.ts'],
      rules: { 'no-restricted-imports': only(['./**', '../node/**', '../core/**', 'node:*', 'node:*/**'], 'cli/ imports only itself, node/, core and Node builtins: not src/index.ts.') },
    },
    {
      files: ['src/index.ts'],
      rules: { 'no-restricted-imports': only(['./node/**', './core/**', 'node:*', 'node:*/**'], 'src/index.ts imports only node/, core and Node builtins: not cli/.') },
    },
  ],
};
