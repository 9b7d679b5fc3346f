// A test's time-out as a budget its bounded waits draw on. Each wait takes the smaller of its
// own bound and what is left of the test's time (less a reserve for the failure report), so a
// slow run fails in the wait that was slow, with that wait's diagnostics (consoles, guest
// logs), and not with node:test's bare "test timed out".

/** Returns `within(ms)`: ms, or less if the test's time-out (started now) is nearer. */
export function budget(timeoutMs: number, reserveMs = 4 * 60_000): (ms: number) => number {
  const end = Date.now() + timeoutMs - reserveMs;
  return (ms) => Math.max(1_000, Math.min(ms, end - Date.now()));
}
