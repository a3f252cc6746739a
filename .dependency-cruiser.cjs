/**
 * The layers of azdb, as rules `npm test` checks (test/architecture/layers.test.ts) and anyone can
 * run: `npx depcruise src --config .dependency-cruiser.cjs`. docs/architecture.md explains them.
 *
 *   cli, ui  →  core  →  broker, azure, access, config, diagnostics  →  errors, format, process
 *
 * Nothing points back up; the emulator (Azure's stand-in for the demo and the tests) is wired in
 * by the entry point (src/azdb.ts) only.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle makes a module impossible to load or test on its own.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'ui-only-through-core-api',
      severity: 'error',
      comment: 'Screens render and dispatch: they get an API object and import only the core\'s contract types (src/core/api), never cli, the core\'s implementation or the layers below.',
      from: { path: '^src/ui/' },
      to: { path: '^src/', pathNot: ['^src/ui/', '^src/core/api/', '^src/errors\\.ts$', '^src/format\\.ts$'] },
    },
    {
      name: 'ui-no-sockets',
      severity: 'error',
      comment: 'The UI never opens connections itself.',
      from: { path: '^src/ui/' },
      to: { dependencyTypes: ['core'], path: '^(node:)?(net|tls|dgram|http|https|child_process)$' },
    },
    {
      name: 'core-api-is-types-and-constants',
      severity: 'error',
      comment: 'src/core/api is the contract with the screens: it must load nothing heavy.',
      from: { path: '^src/core/api/' },
      to: { path: '^src/', pathNot: ['^src/core/api/', '^src/config/user-state\\.ts$'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'core-not-front-ends',
      severity: 'error',
      comment: 'The core serves both front ends and knows neither.',
      from: { path: '^src/core/' },
      to: { path: '^src/(cli|ui)/' },
    },
    {
      name: 'lower-layers-not-upward',
      severity: 'error',
      comment: 'broker, azure, access, config, diagnostics and process never call the core or a front end.',
      from: { path: '^src/(broker|azure|access|config|diagnostics|process)/' },
      to: { path: '^src/(core|cli|ui)/' },
    },
    {
      name: 'access-is-pure',
      severity: 'error',
      comment: 'Role evaluation is a pure function of the roles (shaped by the config schema) and the request.',
      from: { path: '^src/access/' },
      to: { path: '^src/(broker|azure|config|diagnostics|process|emulator)/', pathNot: '^src/config/schema\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'azure-sdk-only-in-azure',
      severity: 'error',
      comment: 'Every Azure call and credential goes through src/azure.',
      from: { path: '^src/', pathNot: '^src/azure/' },
      to: { path: '(^|/)node_modules/@azure/' },
    },
    {
      name: 'codecs-self-contained',
      severity: 'error',
      comment: 'A codec turns bytes into typed messages and back: nothing outside its own folder, no sockets.',
      from: { path: '^src/broker/([^/]+)/codec/' },
      to: { path: '^src/', pathNot: '^src/broker/$1/codec/' },
    },
    {
      name: 'codecs-no-io',
      severity: 'error',
      comment: 'Codecs never touch sockets, files or processes.',
      from: { path: '^src/broker/[^/]+/codec/' },
      to: { dependencyTypes: ['core'], path: '^(node:)?(net|tls|fs|fs/promises|child_process|http|https|dgram|stream)$' },
    },
    {
      name: 'emulator-only-from-entry',
      severity: 'error',
      comment: 'Production code never knows about the emulated Azure; the entry point hands it to `azdb demo`.',
      from: { path: '^src/', pathNot: ['^src/emulator/', '^src/azdb\\.ts$'] },
      to: { path: '^src/emulator/' },
    },
    {
      name: 'subprocesses-through-one-wrapper',
      severity: 'error',
      comment: 'All subprocesses go through src/process/exec.ts.',
      from: { path: '^src/', pathNot: ['^src/process/exec\\.ts$', '^src/emulator/embedded-postgres\\.ts$'] },
      to: { path: '(^(node:)?child_process$)|((^|/)node_modules/execa/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
