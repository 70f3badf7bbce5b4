import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
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

/**
 * A port whose `port + 10000` (Redis Cluster bus) is also free and below 65536, or an explicit
 * pair when the caller passes its own `--cluster-port`.
 */
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
