/**
 * The local runtime's pod network, loaded into every pod's process (NODE_OPTIONS
 * --import). Pods listen on 127.42.b.c, but the API reports them as 10.42.b.c (the
 * EndpointSlice API refuses loopback addresses), so a process that dials a pod IP it
 * read from the API (the router, from EndpointSlices) would reach nothing. This maps
 * such connects back, as a CNI's routes would. Development only: the programs' own code
 * is untouched.
 */
import net from "node:net";

const toLoopback = (host: unknown) => (typeof host === "string" && host.startsWith("10.42.") ? `127.42.${host.slice("10.42.".length)}` : host);

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const first = args[0];
  // net.connect() passes [options, callback] already normalized (an array); others pass options or (port, host).
  const options = Array.isArray(first) ? first[0] : first;
  if (options && typeof options === "object" && "host" in options) (options as {host: unknown}).host = toLoopback((options as {host: unknown}).host);
  else if (typeof first === "number" && typeof args[1] === "string") args[1] = toLoopback(args[1]);
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;
