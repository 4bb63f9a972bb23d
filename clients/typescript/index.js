// A typed client for refreshd: openapi-fetch over the types openapi-typescript
// generates from openapi.yaml (schema.d.ts, rewritten by `make generate`).
import createClient from "openapi-fetch";

/**
 * Returns a client for the refreshd at baseUrl. Requests carry apiKey raw in
 * Authorization, as the API expects (no "Bearer"), and tenantId, when given, as
 * X-FusionAuth-TenantId.
 *
 * @param {string} baseUrl
 * @param {import("./index.d.ts").RefreshdClientOptions} [options]
 */
export function createRefreshdClient(baseUrl, options = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (options.apiKey) headers["Authorization"] = options.apiKey;
  if (options.tenantId) headers["X-FusionAuth-TenantId"] = options.tenantId;
  return createClient({ baseUrl, headers, ...(options.fetch ? { fetch: options.fetch } : {}) });
}
