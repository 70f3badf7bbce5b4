import { describe, expect, it } from 'vitest';
import { SUPERVISOR_PID_VARIABLE, supervisorPid } from './parent.js';

describe('supervisorPid', () => {
  it('reads the runner’s pid, and nothing else', () => {
    expect(supervisorPid({ [SUPERVISOR_PID_VARIABLE]: '4242' })).toBe(4242);
    expect(supervisorPid({})).toBeUndefined();
    for (const value of ['', 'abc', '0', '1', '-5', '12.5']) {
      expect(supervisorPid({ [SUPERVISOR_PID_VARIABLE]: value }), value).toBeUndefined();
    }
  });
});
