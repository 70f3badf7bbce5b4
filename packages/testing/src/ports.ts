import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';

/** Ports this process handed out lately, oldest first: the kernel may offer one again. */
const handedOut: number[] = [];
const REMEMBERED = 256;

/**
 * A TCP port that was free on 127.0.0.1 a moment ago and that this process has not handed out
 * lately: a port is free again once its probe closes, so two calls in a row (a server's port and
 * its Cluster bus port, say) could otherwise get the same one before either binds it.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await probePort();
    if (handedOut.includes(port)) continue;
    handedOut.push(port);
    if (handedOut.length > REMEMBERED) handedOut.shift();
    return port;
  }
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `count` distinct ports, each free on 127.0.0.1 a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * An IPv4 address of this machine that is not loopback, or undefined when it has none: to prove
 * that a server bound to 127.0.0.1 cannot be reached from the network.
 */
export function outsideAddress(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    const found = entries?.find((entry) => entry.family === 'IPv4' && !entry.internal);
    if (found !== undefined) return found.address;
  }
  return undefined;
}
