/**
 * @module cli/progress-bar
 * Progress bars for long transfers, drawn with cli-progress on stderr. A bar
 * appears only when stderr is a terminal and the transfer has run for about
 * a second, so quick commands and scripts see no noise. One bar per phase
 * (hashing, uploading, downloading); a phase of unknown size shows bytes
 * and rate without a percentage.
 */
import cliProgress from 'cli-progress';
import { formatSize } from '@stowage/sdk/common/sizes.js';
import type { ProgressEvent, ProgressListener } from '@stowage/sdk';

/** How long a transfer runs before its bar appears. */
const SHOW_AFTER_MS = 1000;

const LABELS: Record<ProgressEvent['phase'], string> = {
  hash: 'hashing',
  upload: 'uploading',
  download: 'downloading',
};

/** A progress reporter: feed it events, stop it when done. */
export interface Progress {
  listener: ProgressListener;
  stop(): void;
}

/**
 * Starts a reporter for one command. Without a terminal on stderr it does nothing.
 *
 * @example
 * const progress = startProgress();
 * try { await vol.files.writeFile(path, local, { onProgress: progress.listener }); } finally { progress.stop(); }
 */
export function startProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { listener: () => undefined, stop: () => undefined };
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  let phase: ProgressEvent['phase'] | undefined;

  const stopBar = (): void => {
    bar?.stop();
    bar = undefined;
  };

  const listener: ProgressListener = (e) => {
    if (Date.now() - started < SHOW_AFTER_MS && bar === undefined) return;
    if (phase !== e.phase) {
      stopBar();
      phase = e.phase;
    }
    const known = e.total !== undefined && e.total > 0;
    const payload = { label: LABELS[e.phase], done: formatSize(e.done), whole: known ? formatSize(e.total!) : '?' };
    if (bar === undefined) {
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: known
            ? '{label} [{bar}] {percentage}% {done}/{whole} eta {eta_formatted}'
            : '{label} {done} ({duration_formatted})',
          hideCursor: true,
          clearOnComplete: false,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(known ? e.total! : 1, Math.min(e.done, known ? e.total! : 0), payload);
      return;
    }
    bar.update(known ? Math.min(e.done, e.total!) : 0, payload);
  };

  return { listener, stop: stopBar };
}
