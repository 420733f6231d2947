/**
 * A progress display for long work on stderr: one line rewritten in place on a terminal, a line per
 * phase and at most one every two seconds otherwise (logs stay short).
 */
const LOG_EVERY_MS = 2000;

/** Returns a reporter `(phase, done, total)`; `info` prints one line (used when stderr is not a terminal). */
export function progressLine(info: (line: string) => void, stream: NodeJS.WriteStream = process.stderr): (phase: string, done: number, total: number) => void {
  const tty = stream.isTTY === true;
  let lastPhase = '';
  let lastAt = 0;
  return (phase, done, total) => {
    const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
    const line = `${phase}: ${done}/${total} (${pct}%)`;
    const now = Date.now();
    if (tty) {
      if (phase !== lastPhase && lastPhase !== '') stream.write('\n');
      stream.write(`\r${line}\x1b[K`);
      if (done >= total) stream.write('\n');
      lastPhase = done >= total ? '' : phase;
      return;
    }
    if (phase !== lastPhase || done >= total || now - lastAt >= LOG_EVERY_MS) {
      info(line);
      lastPhase = phase;
      lastAt = now;
    }
  };
}
