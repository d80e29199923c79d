import type {Server} from "node:http";
import type {Logger} from "../../../contract/log.js";
import type {Engine} from "../core/generation.js";

/** Mutable serving state the app reads (see `ServingState`). */
export interface MutableServingState {
  engine: Engine | undefined;
  draining: boolean;
}

/**
 * Graceful shutdown, in order: refuse new work (readyz 503, new requests 503), let in-flight
 * and queued requests finish until `graceMs`, then cut what is left, free the model and
 * close the listener. Resolves when everything is released.
 */
export async function drainAndClose(
  server: Server,
  state: MutableServingState,
  graceMs: number,
  logger: Logger,
  pollMs = 50
): Promise<void> {
  state.draining = true;
  state.engine?.stopAccepting();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const deadline = Date.now() + graceMs;
  // Keep-alive connections that fall idle would hold `close` open: shut them as they do.
  const timer = setInterval(() => server.closeIdleConnections(), pollMs);
  const graceOver = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now())).unref());
  const outcome = await Promise.race([closed.then(() => "drained" as const), graceOver]);
  clearInterval(timer);
  if (outcome === "timeout") {
    logger.warn("shutdown grace period over; closing remaining connections", {grace_ms: graceMs});
    server.closeAllConnections();
    await closed;
  }
  await state.engine?.close();
  state.engine = undefined;
  logger.info("shutdown complete", {outcome});
}
