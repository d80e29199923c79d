import type {TenantId} from "../core/tenant.js";

/** Per-request state kept in `res.locals`, shared by middleware and handlers. */
export interface RequestLocals {
  requestId: string;
  /** `performance.now()` at arrival. */
  startedAt: number;
  tenant: TenantId;
  /** Fields of this request's single log line. */
  log: Record<string, unknown>;
  /** Settles when the handler has finished (a client can leave before generation stops). */
  handled?: Promise<void>;
}
