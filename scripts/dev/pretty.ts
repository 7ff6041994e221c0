/**
 * The service's log lines for a terminal. The service writes one JSON object per line (pino, see
 * service/src/logger.ts); here each becomes `time LEVEL pod │ message key=value…`, and a request line
 * (msg "request") becomes `GET /data 200 3ms`. Lines that are not JSON (a crash before the logger
 * exists, Node's own warnings) are shown as they are, so nothing the pod says is hidden.
 */

export interface PrettyOptions {
  /** ANSI colours (a terminal); off when the output is piped or NO_COLOR is set. */
  color: boolean;
}

const LEVELS: Record<string, { label: string; color: number }> = {
  trace: { label: 'TRACE', color: 90 },
  debug: { label: 'DEBUG', color: 36 },
  info: { label: 'INFO ', color: 32 },
  warn: { label: 'WARN ', color: 33 },
  error: { label: 'ERROR', color: 31 },
  fatal: { label: 'FATAL', color: 35 },
};
// pino's numeric levels, for a logger configured without the label formatter.
const NUMERIC: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
// Fields that are shown in their own place (or are the same on every line: service).
const SHOWN = new Set(['level', 'time', 'msg', 'service', 'requestId', 'method', 'path', 'url', 'status', 'ms', 'completed', 'err']);
const POD_COLORS = [36, 35, 34, 33, 32, 96, 95, 94];

const paint = (on: boolean, code: number, text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);

/** A short name for a pod that still tells rollouts apart: `data-service-7d9f8c6b5-x2k4q` → `7d9f8c6b5-x2k4q`. */
export function shortPodName(pod: string): string {
  const parts = pod.split('-');
  return parts.length > 2 ? parts.slice(-2).join('-') : pod;
}

/** The same pod gets the same colour on every line. */
function podColor(pod: string): number {
  let sum = 0;
  for (const char of pod) sum = (sum * 31 + char.charCodeAt(0)) >>> 0;
  return POD_COLORS[sum % POD_COLORS.length];
}

function clock(time: unknown): string {
  const date = typeof time === 'number' || typeof time === 'string' ? new Date(time) : new Date();
  return Number.isNaN(date.getTime()) ? String(time) : date.toISOString().slice(11, 23);
}

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One line of a pod's log, made readable. */
export function prettyLine(pod: string, line: string, options: PrettyOptions): string {
  const prefix = (levelText: string, time: string) => `${paint(options.color, 90, time)} ${levelText} ${paint(options.color, podColor(pod), shortPodName(pod))} │`;
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${prefix('     ', clock(undefined))} ${line}`;
  }
  const levelName = typeof entry.level === 'number' ? (NUMERIC[entry.level] ?? String(entry.level)) : String(entry.level ?? 'info');
  const level = LEVELS[levelName] ?? { label: levelName.toUpperCase().padEnd(5).slice(0, 5), color: 37 };
  const head = prefix(paint(options.color, level.color, level.label), clock(entry.time));

  let message: string;
  if (entry.msg === 'request' && typeof entry.method === 'string') {
    const status = Number(entry.status);
    const statusColor = status >= 500 ? 31 : status >= 400 ? 33 : 32;
    message = `${entry.method} ${String(entry.path ?? entry.url ?? '')} ${paint(options.color, statusColor, String(entry.status))} ${String(entry.ms)}ms`;
    if (entry.completed === false) message += paint(options.color, 33, ' (client went away)');
  } else {
    message = String(entry.msg ?? '');
  }
  const extras = Object.entries(entry)
    .filter(([key]) => !SHOWN.has(key))
    .map(([key, v]) => `${paint(options.color, 90, `${key}=`)}${value(v)}`);
  let text = `${head} ${message}${extras.length ? ` ${extras.join(' ')}` : ''}`;
  // pino's error serializer: {type, message, stack}; the stack is what a developer wants to see.
  const err = entry.err as { type?: string; message?: string; stack?: string } | undefined;
  if (err && typeof err === 'object') {
    text += ` ${paint(options.color, 31, `${err.type ?? 'Error'}: ${err.message ?? ''}`)}`;
    if (typeof err.stack === 'string') {
      const frames = err.stack.split('\n').slice(1).map((frame) => `    ${frame.trim()}`);
      if (frames.length) text += `\n${frames.join('\n')}`;
    }
  }
  return text;
}
