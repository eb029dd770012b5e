export { ApiKeys, bearerCredential } from './api-keys.js'
export { MAX_TOKEN_TTL_MS, OperatorTokens, type OperatorClaims, type TokenAlgorithm, type TokenKeys } from './operator-tokens.js'
