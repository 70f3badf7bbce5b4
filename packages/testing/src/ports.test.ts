import { describe, expect, it } from 'vitest';
import { freePort, freePorts } from './ports.js';

describe('freePort', () => {
  it('does not hand out a port again within its last 256, though the kernel offers ports again', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 1000; i++) ports.push(await freePort());
    for (let start = 0; start + 256 <= ports.length; start++) {
      expect(new Set(ports.slice(start, start + 256)).size).toBe(256);
    }
  });

  it('freePorts gives distinct ports', async () => {
    const ports = await freePorts(3);
    expect(new Set(ports).size).toBe(3);
    for (const port of ports) expect(port).toBeGreaterThan(0);
  });
});
