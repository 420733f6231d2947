/**
 * The console's metrics and readiness (docs/monitoring.md, "Coverage console"), for createConsoleApp's
 * `observe`: login posts by outcome, report collections by outcome and their time, the age and summary
 * of the report it shows, its open sessions. Labels are fixed words, never an address or a key id.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Histogram } from 'prom-client';
import type { CoverageReport } from '../coverage/report.js';
import type { ObserveOptions } from '../http/observe.js';

/** What the console's gauges read when /metrics is scraped. */
export interface ConsoleFacts {
  /** The report the console shows, if one was collected. */
  report: () => CoverageReport | undefined;
  /** Sessions not yet expired. */
  sessions: () => number;
  /** Seconds between collections (`--interval`). */
  intervalS: number;
}

/** How old the report may grow, in collection intervals, before /readyz says `report: failing`. */
export const READY_INTERVALS = 3;

const VERDICTS = ['ok', 'at_risk', 'lost_path'] as const;
const LOGIN_RESULTS = ['ok', 'refused', 'rate_limited'] as const;
const REFRESH_RESULTS = ['ok', 'failed'] as const;
/** Collections ask every part of the fleet, each bounded by the fleet's timeout (default 10 s). */
const REFRESH_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const ageS = (r: CoverageReport) => Math.max(0, (Date.now() - Date.parse(r.generated_at)) / 1000);

/** The console's gauges and its readiness check (`report`: a report younger than READY_INTERVALS intervals). */
export function consoleObservability(f: ConsoleFacts): ObserveOptions {
  const held = () => f.report();
  return {
    server: 'console',
    processMetrics: true,
    gauges: [
      { name: 'lifeboat_console_report_age_seconds', help: 'seconds since the report the console shows was collected (absent before the first)', collect: () => { const r = held(); return r && ageS(r); } },
      { name: 'lifeboat_console_report_ok', help: '1 when the report shown is ok (every key ok, every part answered, the vault ok), as `lifeboat coverage` exit 0', collect: () => { const r = held(); return r && (r.ok ? 1 : 0); } },
      {
        name: 'lifeboat_console_keys',
        help: 'keys in the report shown, by verdict',
        labelNames: ['verdict'],
        collect: async () => {
          const r = held();
          return r && VERDICTS.map((v) => ({ labels: { verdict: v }, value: r.summary[v] }));
        },
      },
      { name: 'lifeboat_console_parts_unknown', help: 'parts of the fleet that did not answer the last collection', collect: () => held()?.summary.parts_unknown },
      { name: 'lifeboat_console_sessions', help: 'signed-in sessions not yet expired', collect: () => f.sessions() },
    ],
    ready: {
      report: () => {
        const r = held();
        if (!r || ageS(r) > READY_INTERVALS * f.intervalS) throw new Error('no recent report');
      },
    },
  };
}

/** Counters the console moves itself. */
export interface ConsoleCounters {
  /** A login post judged: a session started, refused (wrong token, bad login CSRF token), or over its limit. */
  login(result: (typeof LOGIN_RESULTS)[number]): void;
  /** A collection ended, after `seconds`. */
  refreshed(result: (typeof REFRESH_RESULTS)[number], seconds: number): void;
}

/** Registers the console's counters on the app's registry (createBaseApp with `observe`). */
export function consoleCounters(app: FastifyInstance): ConsoleCounters {
  const registers = [app.metrics!];
  const logins = new Counter({ name: 'lifeboat_console_logins_total', help: 'login posts: ok (a session started), refused (a wrong token or login CSRF token), rate_limited', labelNames: ['result'], registers });
  const refreshes = new Counter({ name: 'lifeboat_console_refreshes_total', help: 'report collections (timed and "Refresh now") by result', labelNames: ['result'], registers });
  const duration = new Histogram({ name: 'lifeboat_console_refresh_duration_seconds', help: 'time to collect the report from the fleet', buckets: REFRESH_BUCKETS, registers });
  // Every series from the start, at 0, so a rate over them is defined before the first event.
  for (const result of LOGIN_RESULTS) logins.inc({ result }, 0);
  for (const result of REFRESH_RESULTS) refreshes.inc({ result }, 0);
  return {
    login: (result) => logins.inc({ result }),
    refreshed: (result, seconds) => {
      refreshes.inc({ result });
      duration.observe(seconds);
    },
  };
}
