// The recommended GraphQL Code Generator setup for Conveyor's schema (ADR-0024).
//
// - The client preset, one output folder: GraphQL Code Generator 7's `typescript` and
//   `typescript-operations` plugins written into ONE file fail `tsc --strict` (duplicate
//   identifiers), the preset does not.
// - Scalars mapped: without a mapping `JSON` (job payloads, results, event data) comes out
//   `unknown`/`any` and `DateTime` `any`. `DateTime` is an ISO 8601 string with an offset;
//   `JSON` is this kit's `JsonValue`.
//
//   // codegen.ts
//   import { conveyorCodegen } from '@conveyor/client/codegen';
//   export default conveyorCodegen({ schema: 'schema.graphql', documents: ['src/**/*.ts'], out: 'src/gql/' });
import type { CodegenConfig } from '@graphql-codegen/cli';

const JSON_VALUE = '@conveyor/client#JsonValue';

/** Scalar mappings for Conveyor's custom scalars. */
export const scalars = {
  DateTime: 'string',
  JSON: { input: JSON_VALUE, output: JSON_VALUE },
} as const;

export interface ConveyorCodegenOptions {
  /** Conveyor's SDL (`conveyor export-schema`), or the API's URL for introspection. */
  schema: string;
  /** Where your operations are (`graphql(...)` calls). */
  documents: string[];
  /** The output folder (ends with `/`). */
  out: string;
}

export function conveyorCodegen({ schema, documents, out }: ConveyorCodegenOptions): CodegenConfig {
  return {
    schema,
    documents,
    ignoreNoDocuments: true,
    generates: {
      [out]: {
        preset: 'client',
        presetConfig: { fragmentMasking: false },
        config: {
          scalars,
          useTypeImports: true,
          enumsAsTypes: true,
          skipTypename: false,
          dedupeFragments: true,
        },
      },
    },
  };
}
