import type { Client } from "openapi-fetch";
import type { paths } from "./schema.d.ts";

export type { paths, components, operations } from "./schema.d.ts";

/** How a client reaches refreshd. */
export interface RefreshdClientOptions {
  /** An API key, sent raw in Authorization; the exchange and the status need none. */
  apiKey?: string;
  /** Scopes every request to this tenant (X-FusionAuth-TenantId). */
  tenantId?: string;
  /** The fetch to use; the global one by default. */
  fetch?: typeof globalThis.fetch;
}

/** Returns a typed client for the refreshd at baseUrl. */
export declare function createRefreshdClient(baseUrl: string, options?: RefreshdClientOptions): Client<paths>;
