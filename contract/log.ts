/**
 * The log format every Paddock program writes: one JSON object per line on stdout
 * (time, level, msg, fields), which log collectors parse without configuration. It sits
 * beside the contract because the programs agree on it; it imports nothing.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const rank: Record<LogLevel, number> = {debug: 10, info: 20, warn: 30, error: 40};

export type LogFields = Record<string, unknown>;

/** One JSON object per line on stdout, the format log collectors parse without configuration. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(line),
  now: () => Date = () => new Date()
): Logger {
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (rank[lvl] < rank[level]) return;
    write(JSON.stringify({time: now().toISOString(), level: lvl, msg, ...fields}) + "\n");
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f)
  };
}
