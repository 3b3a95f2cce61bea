import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed operations generated from the backend's exported SDL (../schema.graphql).
// Run `npm run codegen` after the schema changes; `npm run codegen:check` fails on drift.
// CODEGEN_OUT lets `codegen:check` generate into a temp dir and compare.
// persisted-documents.json (sha256 -> document) is the dashboard's trusted-documents manifest:
// `npm run codegen` copies it to ../conveyor/api/dashboard-documents.json, which the API
// accepts with GRAPHQL_TRUSTED_DOCUMENTS=true (ADR-0024).
const out = process.env.CODEGEN_OUT ?? 'src/gql/';

const config: CodegenConfig = {
  schema: '../schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**/*'],
  ignoreNoDocuments: true,
  generates: {
    [out]: {
      preset: 'client',
      presetConfig: {
        fragmentMasking: false,
        persistedDocuments: { mode: 'embedHashInDocument', hashAlgorithm: 'sha256' },
      },
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
