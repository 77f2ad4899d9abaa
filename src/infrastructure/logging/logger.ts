import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Fields that must never reach a log line, wherever they appear. */
const redact = [
  'password',
  '*.password',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'refreshToken',
  '*.refreshToken',
  'accessToken',
  '*.accessToken',
];

/**
 * JSON lines by default; pretty when a person is watching a terminal. To standard output, or to
 * standard error for a command-line tool whose output is its result.
 */
export function createLogger(options: { level: string; pretty?: boolean; stderr?: boolean }): Logger {
  const fd = options.stderr === true ? 2 : 1;
  const pretty = options.pretty ?? ((fd === 2 ? process.stderr : process.stdout).isTTY === true && process.env.NODE_ENV !== 'production');
  const base: LoggerOptions = { level: options.level, redact: { paths: redact, censor: '[redacted]' } };
  if (!pretty) return fd === 1 ? pino(base) : pino(base, pino.destination(fd));
  return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', destination: fd } } });
}
