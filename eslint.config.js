import neostandard from 'neostandard'

// One lint config for the repo: neostandard (standard style, as fastify uses) with TypeScript.
export default [
  ...neostandard({
    ts: true,
    ignores: ['**/dist/**', '**/node_modules/**', '.tap/**', '.data/**', 'clients/**/build/**'],
  }),
  {
    rules: {
      // `void promise` marks a deliberate fire-and-forget.
      'no-void': ['error', { allowAsStatement: true }],
    },
  },
]
