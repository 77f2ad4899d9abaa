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

/** JSON lines by default; pretty when a person is watching a terminal. */
export function createLogger(options: { level: string; pretty?: boolean }): Logger {
  const pretty = options.pretty ?? (process.stdout.isTTY === true && process.env.NODE_ENV !== 'production');
  const base: LoggerOptions = { level: options.level, redact: { paths: redact, censor: '[redacted]' } };
  if (!pretty) return pino(base);
  return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } });
}
