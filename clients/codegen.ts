// graphql-codegen: typed documents from the live schema (introspected without a key).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  // ES modules as Node runs them: relative imports end in `.js`.
  emitLegacyCommonJSImports: false,
  schema: `${process.env.MR_SERVER ?? "http://127.0.0.1:8080"}/graphql`,
  documents: ["typescript/**/*.ts", "!typescript/generated/**"],
  generates: {
    "typescript/generated/": {
      preset: "client",
      config: {
        // The registry's custom scalars, as TypeScript sees them in JSON.
        scalars: {
          BigInt: { input: "string | number", output: "string" },
          DateTime: { input: "string", output: "string" },
          JSON: { input: "unknown", output: "unknown" },
        },
      },
    },
  },
};

export default config;
