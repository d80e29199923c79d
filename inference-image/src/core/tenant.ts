/** Tenant identity of a caller: a short hash of its API key, safe to put in logs and cache keys. */
export type TenantId = string;

/** Used as the tenant of every caller when no API keys are configured. */
export const OPEN_TENANT: TenantId = "open";
