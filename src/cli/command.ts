/** The shape every CLI command has; main.ts parses and dispatches. */
export interface Io {
  out(line: string): void;
  error(line: string): void;
  /** Print the command's usage to stderr and return exit status 2. */
  usage(): number;
  /** Aborts on Ctrl-C. */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  help: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(positionals: string[], values: Record<string, string | boolean | undefined>, io: Io): Promise<number>;
}

export function option(values: Record<string, string | boolean | undefined>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}
