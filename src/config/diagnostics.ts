/**
 * Diagnostics shared by the native config loader and the legacy importers.
 * Every problem names the file and line it came from so `hadns check` can print
 * `FILE:LINE: message` and editors can jump to it.
 */
export type Severity = 'error' | 'warning';

export interface Diagnostic {
  file: string;
  line: number;
  severity: Severity;
  message: string;
  /** Dotted key path in the native config, when known (e.g. `resolver.cache.size`). */
  key?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}`;
  const sev = d.severity === 'warning' ? 'warning: ' : '';
  const key = d.key ? `${d.key}: ` : '';
  return `${where}: ${sev}${key}${d.message}`;
}

export class Diagnostics {
  readonly items: Diagnostic[] = [];
  error(file: string, line: number, message: string, key?: string): void {
    this.items.push({ file, line, severity: 'error', message, key });
  }
  warn(file: string, line: number, message: string, key?: string): void {
    this.items.push({ file, line, severity: 'warning', message, key });
  }
  get errors(): Diagnostic[] { return this.items.filter((d) => d.severity === 'error'); }
  get warnings(): Diagnostic[] { return this.items.filter((d) => d.severity === 'warning'); }
  get hasErrors(): boolean { return this.items.some((d) => d.severity === 'error'); }
}

/** Thrown when a config cannot be used; carries every diagnostic found. */
export class ConfigError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).join('\n') || 'invalid configuration');
    this.name = 'ConfigError';
  }
}
