import {createHash} from "node:crypto";
import {readFileSync, statSync} from "node:fs";
import {unauthorized} from "../core/errors.js";
import type {TenantId} from "../core/tenant.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** Parses an API keys file: one key per line; blank lines and `#` comments ignored. */
export function parseKeysFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * Bearer-key check against a file mounted from a Secret. Keys are kept only as sha256
 * digests, compared by digest, so lookups do not leak key prefixes through timing.
 * The file is re-read when its mtime changes (checked at most every `recheckMs`), so a
 * rotated Secret takes effect without a restart.
 */
export class ApiKeys {
  #digests = new Set<string>();
  #mtimeMs = -1;
  #checkedAt = -Infinity;

  constructor(
    private readonly path: string,
    private readonly recheckMs = 5_000,
    private readonly now: () => number = () => Date.now()
  ) {
    this.#reload();
    if (this.#digests.size === 0) throw new Error(`API_KEYS_FILE ${path} holds no keys; remove the variable to run without auth`);
  }

  /** Returns the caller's tenant id or throws 401. */
  authenticate(authorization: string | undefined): TenantId {
    this.#maybeReload();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
    if (!match?.[1]) throw unauthorized("Missing API key: send 'Authorization: Bearer <key>'.");
    const digest = sha256(match[1]);
    if (!this.#digests.has(digest)) throw unauthorized("Incorrect API key provided.");
    return digest.slice(0, 32);
  }

  #maybeReload(): void {
    const t = this.now();
    if (t - this.#checkedAt < this.recheckMs) return;
    this.#checkedAt = t;
    try {
      if (statSync(this.path).mtimeMs !== this.#mtimeMs) this.#reload();
    } catch {
      // A Secret volume swaps its symlink atomically; a missing file mid-swap keeps the old keys.
    }
  }

  #reload(): void {
    this.#mtimeMs = statSync(this.path).mtimeMs;
    this.#digests = new Set(parseKeysFile(readFileSync(this.path, "utf8")).map(sha256));
    this.#checkedAt = this.now();
  }
}
