/**
 * Structured logging (pino): one JSON object per line on stderr, or a readable single line per
 * event on a terminal (pino-pretty, synchronous so nothing is lost at exit).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'auto' | 'json' | 'pretty';

export function createLogger(level: string, format: LogFormat = 'auto', name = 'hadns'): Logger {
  const usePretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true);
  if (usePretty) {
    const stream = pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
    return pino({ level, name }, stream);
  }
  return pino({ level, name, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
