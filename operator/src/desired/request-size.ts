/** Bytes of request body allowed per token of context: JSON escaping and markup included, generously. */
export const BYTES_PER_TOKEN = 16;
/** The floor (the server's and the router's default) and the ceiling both accept. */
export const MIN_REQUEST_BYTES = 1024 * 1024;
export const MAX_REQUEST_BYTES = 64 * 1024 * 1024;

/**
 * The request body a service's router and servers accept (MAX_REQUEST_BYTES): enough for a
 * prompt that fills a slot's context, 16 bytes a token plus 1 MiB for the rest of the
 * body. A fixed 1 MiB refused a 200k-token prompt (413) that a 1M-token context allows. Pure.
 */
export function maxRequestBytes(contextSize: number): number {
  return Math.min(MAX_REQUEST_BYTES, Math.max(MIN_REQUEST_BYTES, contextSize * BYTES_PER_TOKEN + MIN_REQUEST_BYTES));
}
