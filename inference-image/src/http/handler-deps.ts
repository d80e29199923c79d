import type {Logger} from "../../../contract/log.js";
import type {HandlerCache} from "../cache/handler-cache.js";
import type {Engine} from "../core/generation.js";
import type {ServerMetrics} from "../metrics.js";
import type {FlightRegistry} from "./flight.js";

/** What the completion handlers share, built once by the app. */
export interface CompletionHandlerDeps {
  /** The loaded engine; routes refuse requests before it exists. */
  readonly engine: () => Engine;
  readonly metrics: ServerMetrics;
  readonly logger: Logger;
  /** Upper bound on one request, queueing included, in ms. */
  readonly requestTimeoutMs: number;
  readonly cache?: HandlerCache | undefined;
  readonly flights: FlightRegistry;
  /** Put prompt text in the request log (LOG_PROMPTS). Off by default: prompts are user data. */
  readonly logPrompts?: boolean;
}
