import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed operations generated from the backend's exported SDL (../schema.graphql).
// Run `npm run codegen` after the schema changes; `npm run codegen:check` fails on drift.
// CODEGEN_OUT lets `codegen:check` generate into a temp dir and compare.
const out = process.env.CODEGEN_OUT ?? 'src/gql/';

const config: CodegenConfig = {
  schema: '../schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*'],
  ignoreNoDocuments: true,
  generates: {
    [out]: {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', JSON: 'unknown' },
        skipTypename: false,
        dedupeFragments: true,
      },
    },
  },
};
export default config;
