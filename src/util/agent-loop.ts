/**
 * The loop of a key node's background agents (the backup agent, the key-share publisher): run a step;
 * run again at once when it did work; when it had nothing, wait `idleMs` or a kick; when it failed,
 * log the error once, keep it (in memory and through `recordError`, so `node status` in another
 * process sees it), and back off from `retryMinMs`, doubling up to `retryMaxMs`. The step retries what
 * failed: nothing is dropped.
 */
import { LifeboatError } from '../errors.js';

export interface AgentLoopOptions {
  /** Prefix of the log line, e.g. `backup`. */
  name: string;
  /** One pass; true if it did any work. Throws to back off. */
  step: () => Promise<boolean>;
  /** Keeps the last error, or clears it (null), where other processes read it. Must not throw. */
  recordError: (msg: string | null) => Promise<void>;
  log?: (line: string) => void;
  retryMinMs: number;
  retryMaxMs: number;
  idleMs?: number;
}

export class AgentLoop {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** The error of the last failed step, until a step succeeds. */
  lastError: string | null = null;

  constructor(private readonly o: AgentLoopOptions) {}

  /** Starts the loop (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops the loop after the step in flight. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Something was committed: work now instead of at the next tick. */
  kick(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    let delay = this.o.retryMinMs;
    while (this.running) {
      try {
        const worked = await this.o.step();
        if (this.lastError !== null) await this.setError(null);
        delay = this.o.retryMinMs;
        if (worked) continue;
        await this.sleep(this.o.idleMs ?? 1000);
      } catch (err) {
        const code = err instanceof LifeboatError ? err.code : 'error';
        const msg = `${code}: ${err instanceof Error ? err.message : String(err)}`;
        if (msg !== this.lastError) {
          this.o.log?.(`${this.o.name}: ${msg}; retrying`);
          await this.setError(msg);
        }
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.o.retryMaxMs);
      }
    }
  }

  private async setError(msg: string | null): Promise<void> {
    this.lastError = msg;
    await this.o.recordError(msg);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
