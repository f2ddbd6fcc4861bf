/**
 * @module sandbox/host/image-builder
 * Builds one image's root directory: the base (mmdebstrap, as host root,
 * from Debian's signed packages only), the uid shift into the subordinate
 * range, then each step inside the build sandbox (build-sandbox.ts) as
 * sandbox root. Knows nothing of caching, locking or where images live
 * (images.ts).
 *
 * Network per step: `aptInstall` shares the host network (the apt mirror is
 * reachable only through it); `runCommands` and `copy` get loopback only, so
 * a build step cannot reach the Stowage server or anything else on the host's
 * network — fetch through aptInstall, or copy from the build context.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, UnavailableError } from '@stowage/sdk/common/errors.js';
import { runBuildCommand } from './build-sandbox.js';
import { streamCommand, type StreamResult } from './host-command.js';
import type { CheckedImageSpec, ImageStep } from './image-spec.js';
import { shiftIds } from './uid-shift.js';

/** The apt sources files a host may have, deb822 first (Debian 12's default). */
export const HOST_APT_SOURCES = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
/** The Debian release of the `debian` base. */
export const DEBIAN_SUITE = 'bookworm';

/** Environment every build step starts with; `env` steps add to it. */
export const BASE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
};

/** Options of a build. */
export interface BuildOptions {
  /** The apt sources file mmdebstrap and apt use (default: the first of HOST_APT_SOURCES that exists). */
  aptSources?: string;
  /** Longest a base or step may run. */
  stepTimeoutMs: number;
  /** The build log, as it comes. */
  log: (text: string) => void;
}

/** What a base build measured. */
export interface BaseTimes {
  baseMs: number;
  shiftMs: number;
  shiftedFiles: number;
}

/** The apt sources file to build from, or a clear error. */
export function hostAptSources(explicit?: string): string {
  const found = explicit ?? HOST_APT_SOURCES.find((p) => existsSync(p));
  if (found === undefined || !existsSync(found)) {
    throw new UnavailableError(
      `no apt sources file (looked for ${explicit ?? HOST_APT_SOURCES.join(', ')}): the Debian base image is built from the host's apt mirror`,
    );
  }
  return found;
}

/** Packages the Debian base has beyond minbase. */
export const DEBIAN_EXTRAS = ['python3', 'ca-certificates'];

function failedBase(base: string, r: StreamResult): UnavailableError {
  const how = r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`;
  return new UnavailableError(
    `building the ${base} base image failed: mmdebstrap ${how} (is the apt mirror reachable?): ${r.tail.trim().split('\n').slice(-5).join(' / ')}`,
  );
}

/** Builds the base of `spec` into `root` (which must not exist yet), then shifts its ids. */
export async function buildBase(base: CheckedImageSpec['base'], root: string, opts: BuildOptions): Promise<BaseTimes> {
  const sources = hostAptSources(opts.aptSources);
  // The default image has Python, as users of sandboxes expect (agents run `python3 -c ...` first of all).
  const variant =
    base === 'debian'
      ? ['--variant=minbase', `--include=${DEBIAN_EXTRAS.join(',')}`]
      : ['--variant=extract', '--include=busybox-static'];
  const t0 = performance.now();
  opts.log(`==> base ${base}: mmdebstrap ${variant.join(' ')} ${DEBIAN_SUITE} from ${sources}\n`);
  // A private mount namespace: the mounts mmdebstrap makes in the target die with it, even if it is killed.
  const r = await streamCommand(
    [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      '--',
      'mmdebstrap',
      '--mode=root',
      '--format=directory',
      ...variant,
      DEBIAN_SUITE,
      root,
      sources,
    ],
    { onOutput: opts.log, timeoutMs: opts.stepTimeoutMs },
  );
  if (r.code !== 0) throw failedBase(base, r);
  // mmdebstrap leaves the build host's name and resolver behind in some variants: an image carries neither.
  for (const f of ['etc/resolv.conf', 'etc/hostname']) await rm(join(root, f), { force: true });
  // Nor device nodes: a sandbox gets its own /dev, and a node in the image would be a door to a host device.
  await rm(join(root, 'dev'), { recursive: true, force: true });
  await mkdir(join(root, 'dev'), { mode: 0o755 });
  const t1 = performance.now();
  const shiftedFiles = await shiftIds(root);
  const t2 = performance.now();
  opts.log(`==> shifted ${shiftedFiles} files into the subordinate id range in ${Math.round(t2 - t1)} ms\n`);
  if (base === 'busybox') {
    await runStepCommand(
      root,
      'busybox setup',
      ['/bin/busybox', 'sh', '-c', BUSYBOX_SETUP],
      { ...BASE_ENV },
      false,
      opts,
    );
  }
  return { baseMs: Math.round(t1 - t0 + (performance.now() - t2)), shiftMs: Math.round(t2 - t1), shiftedFiles };
}

/** Turns the bare busybox binary into a usable root: applet links, root's passwd and group entries, home. */
const BUSYBOX_SETUP = [
  '/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin',
  '/bin/busybox --install -s',
  'mkdir -p /root /proc /sys /dev /tmp /etc',
  "printf 'root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\\n' > /etc/passwd",
  "printf 'root:x:0:\\nnogroup:x:65534:\\n' > /etc/group",
].join(' && ');

/** A failed step: which one, how it ended and what it printed last. */
function failedStep(label: string, r: StreamResult): InvalidArgumentError {
  const how = r.timedOut ? 'timed out' : r.code !== null ? `exited ${r.code}` : `was killed by ${r.signal}`;
  return new InvalidArgumentError(
    `image build failed at ${label}: ${how}; its output ends with:\n${r.tail.trimEnd().split('\n').slice(-20).join('\n')}`,
    {
      details: { step: label, exitCode: r.code, output: r.tail },
    },
  );
}

async function runStepCommand(
  root: string,
  label: string,
  command: string[],
  env: Record<string, string>,
  network: boolean,
  opts: BuildOptions,
  stdin?: NodeJS.ReadableStream,
): Promise<void> {
  opts.log(`==> ${label}\n`);
  const r = await runBuildCommand(root, command, {
    env,
    network,
    onOutput: opts.log,
    timeoutMs: opts.stepTimeoutMs,
    ...(stdin ? { stdin } : {}),
  });
  if (r.code !== 0) throw failedStep(label, r);
}

/** The host's `tar -c` of a directory, as a stream (the sandbox side extracts it). */
function tarOf(dir: string): NodeJS.ReadableStream {
  const child = spawn('tar', ['-c', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return child.stdout;
}

/**
 * Runs the steps of an image over `root` (a shifted base), in order; returns
 * the environment the image records for its sandboxes. `copySources[i]` is
 * the host path step i copies from.
 */
export async function runSteps(
  base: CheckedImageSpec['base'],
  root: string,
  steps: readonly ImageStep[],
  copySources: readonly (string | undefined)[],
  opts: BuildOptions,
): Promise<Record<string, string>> {
  const env: Record<string, string> = { ...BASE_ENV };
  for (const [i, step] of steps.entries()) {
    const at = `step ${i + 1}/${steps.length}`;
    if ('aptInstall' in step) {
      if (base !== 'debian')
        throw new InvalidArgumentError(`${at} (aptInstall) needs the debian base; the ${base} base has no apt`);
      const script =
        'apt-get update -q && apt-get install -y -q --no-install-recommends -- "$@" && apt-get clean && rm -rf /var/lib/apt/lists/*';
      await runStepCommand(
        root,
        `${at} (aptInstall ${step.aptInstall.join(' ')})`,
        ['/bin/sh', '-c', script, 'apt', ...step.aptInstall],
        // Not the env steps' variables: apt runs with the host's network, on nothing the tenant chose.
        { ...BASE_ENV, DEBIAN_FRONTEND: 'noninteractive' },
        true,
        opts,
      );
    } else if ('runCommands' in step) {
      for (const [j, command] of step.runCommands.entries()) {
        await runStepCommand(
          root,
          `${at} (runCommands[${j}]: ${command.slice(0, 200)})`,
          ['/bin/sh', '-c', command],
          env,
          false,
          opts,
        );
      }
    } else if ('env' in step) {
      Object.assign(env, step.env);
      opts.log(`==> ${at} (env ${Object.keys(step.env).join(' ')})\n`);
    } else {
      const source = copySources[i];
      if (source === undefined) throw new InvalidArgumentError(`${at} (copy) has no resolved source`);
      const label = `${at} (copy ${step.copy.from} to ${step.copy.to})`;
      const st = await stat(source);
      if (st.isDirectory()) {
        await runStepCommand(
          root,
          label,
          ['/bin/sh', '-c', 'mkdir -p -- "$1" && tar -x -o -f - -C "$1"', 'copy', step.copy.to],
          env,
          false,
          opts,
          tarOf(source),
        );
      } else {
        const mode = (st.mode & 0o777).toString(8);
        await runStepCommand(
          root,
          label,
          [
            '/bin/sh',
            '-c',
            'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" "$1"',
            'copy',
            step.copy.to,
            mode,
          ],
          env,
          false,
          opts,
          createReadStream(source),
        );
      }
    }
  }
  return env;
}
