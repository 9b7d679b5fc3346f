// Runs checkHealth with {targets, auth, timeoutMs} read from stdin and prints the report as
// JSON. Used to probe a --netns cluster from inside its hub namespace (the only place its
// private addresses exist); the tokens travel over stdin, never on a command line.
import { checkHealth, type Targets } from './report.ts';
import type { HttpAuth } from './http.ts';

let input = '';
for await (const chunk of process.stdin) input += String(chunk);
const { targets, auth, timeoutMs } = JSON.parse(input) as { targets: Targets; auth: HttpAuth; timeoutMs?: number };
const report = await checkHealth(targets, auth, timeoutMs);
process.stdout.write(JSON.stringify(report));
