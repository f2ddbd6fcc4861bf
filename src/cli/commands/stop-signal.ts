/**
 * @module cli/commands/stop-signal
 * How long-running commands (serve, sandbox-host) wait to be stopped.
 */

/** Resolves when the process is asked to stop (SIGINT or SIGTERM). */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
