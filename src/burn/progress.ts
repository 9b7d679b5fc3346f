// One progress line per card on a terminal (cli-progress), nothing otherwise.
import cliProgress from 'cli-progress';
import { humanBytes } from './safety.ts';
import type { CardProgress, Phase } from './burn.ts';

interface LineState {
  phase: Phase;
  done: number;
  total: number | null;
  since: number;
  startDone: number;
}

export interface ProgressDisplay {
  update(p: CardProgress): void;
  stop(): void;
}

export function progressDisplay(paths: string[], stream: NodeJS.WriteStream = process.stderr): ProgressDisplay {
  if (!stream.isTTY) return { update: () => undefined, stop: () => undefined };
  const width = Math.max(...paths.map((p) => p.length));
  const state = new Map<string, LineState>();
  const multi = new cliProgress.MultiBar(
    {
      stream,
      hideCursor: true,
      clearOnComplete: false,
      barsize: 24,
      fps: 5,
      format: (options, params, payload: { path: string }) => {
        const s = state.get(payload.path);
        const bar = (options.barCompleteString ?? '').slice(0, Math.round(params.progress * 24)).padEnd(24, options.barIncompleteChar ?? '-');
        if (!s) return payload.path;
        const secs = (performance.now() - s.since) / 1000;
        const rate = secs > 0.5 && s.done > s.startDone ? ` ${humanBytes((s.done - s.startDone) / secs)}/s` : '';
        const amount = s.total ? `${humanBytes(s.done)}/${humanBytes(s.total)}` : humanBytes(s.done);
        const pct = s.total ? `${Math.floor((100 * s.done) / s.total)}%`.padStart(4) : '   ?';
        // phase first: terminals narrower than the line cut its end
        return `${payload.path.padEnd(width)} ${s.phase.padEnd(11)} [${bar}] ${pct} ${amount}${rate}`;
      },
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map(paths.map((p) => [p, multi.create(1, 0, { path: p })]));
  return {
    update(p) {
      const prev = state.get(p.path);
      const now = performance.now();
      const s: LineState =
        prev && prev.phase === p.phase
          ? { ...prev, done: p.done, total: p.total }
          : { phase: p.phase, done: p.done, total: p.total, since: now, startDone: p.done };
      state.set(p.path, s);
      const bar = bars.get(p.path);
      if (!bar) return;
      const final = p.phase === 'verified' || p.phase === 'written' || p.phase === 'failed' || p.phase === 'interrupted';
      bar.setTotal(p.total && !final ? p.total : 1);
      bar.update(final ? (p.phase === 'verified' || p.phase === 'written' ? 1 : 0) : Math.min(p.done, p.total ?? 0), { path: p.path });
    },
    stop() {
      multi.stop();
    },
  };
}
