/**
 * @module mount/fuse/wake-latency
 * `--low-latency`: while a mount serves requests back to back, ask the
 * kernel to keep idle CPUs out of sleep states (a PM QoS CPU latency request
 * of 0 µs through /dev/cpu_dma_latency), and let them sleep again once the
 * burst is over.
 *
 * Why: every FUSE request ends by waking the caller, and waking a CPU that
 * halted costs tens to hundreds of microseconds (a deep C-state on bare
 * metal; a VM exit and the host scheduling the vCPU again on a virtual
 * machine without guest halt-polling), several times what the agent spends
 * on a small request. An idle CPU that polls instead wakes at once. The
 * price is that idle CPUs spin while the burst lasts (and 50 ms after it).
 * Mounts hold it by default wherever the agent may open the device (root),
 * since that is where the 2x on small-file work is; `--no-low-latency`
 * turns it off for machines where spinning CPUs cost more than it saves
 * (many idle cores, burstable instances, batteries).
 *
 * The request lives as long as the open descriptor: a killed agent leaves
 * nothing behind. The value written is the whole request (4 bytes, host
 * order); reading the device gives the machine's current limit.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { UnavailableError } from '@stowage/sdk/common/errors.js';

/** The kernel's CPU latency QoS device. */
export const CPU_LATENCY_DEVICE = '/dev/cpu_dma_latency';
/** PM_QOS_DEFAULT_VALUE: no limit on how deep idle CPUs sleep. */
export const NO_LATENCY_LIMIT = 2_000_000_000;

/** When a hold starts and ends. */
export interface WakeLatencyPolicy {
  /** How often the request rate is looked at while requests arrive. */
  tickMs: number;
  /** Requests within one tick that make a burst (and start or keep a hold). */
  burstRequests: number;
  /** Ticks below a burst after which the hold ends (and the timer stops). */
  quietTicks: number;
}

/** 1,000 requests per second or more starts a hold; 50 ms below that ends it. */
export const DEFAULT_WAKE_LATENCY_POLICY: WakeLatencyPolicy = { tickMs: 10, burstRequests: 10, quietTicks: 5 };

/** What `mount-status` shows of a hold. */
export interface WakeLatencyStatus {
  holding: boolean;
  /** Holds started since the mount. */
  holds: number;
  /** Time spent holding, in ms (the current hold included). */
  heldMs: number;
}

/** Writes one latency limit in µs to the device descriptor. */
function setLimit(fd: number, micros: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(micros);
  writeSync(fd, b);
}

/**
 * Holds a 0 µs CPU latency limit while `note()` is called at burst rate.
 *
 * @example
 * const hold = WakeLatencyHold.open();
 * session = mountFuse(path, ops, { onRequest: () => hold.note() });
 * // ...
 * hold.close();
 */
export class WakeLatencyHold {
  #count = 0;
  #quiet = 0;
  #timer: NodeJS.Timeout | undefined;
  #holding = false;
  #since = 0;
  #heldMs = 0;
  #holds = 0;
  #closed = false;

  constructor(
    readonly fd: number,
    readonly policy: WakeLatencyPolicy = DEFAULT_WAKE_LATENCY_POLICY,
    readonly log: (message: string) => void = (m) => void process.stderr.write(`${m}\n`),
  ) {}

  /** Opens the device (a request at "no limit" until a burst); a clear error when this process may not. */
  static open(path = CPU_LATENCY_DEVICE, policy?: WakeLatencyPolicy, log?: (message: string) => void): WakeLatencyHold {
    try {
      // Write-only and never created: a missing device is an error, not a new file.
      return new WakeLatencyHold(openSync(path, constants.O_WRONLY), policy, log);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? `this kernel has no ${path}`
          : code === 'EACCES' || code === 'EPERM'
            ? `only root may open ${path}`
            : `cannot open ${path}: ${(e as Error).message}`;
      throw new UnavailableError(`low-latency mounts are not available here: ${why}`, { cause: e });
    }
  }

  /**
   * Whether this process may hold a limit: what a mount without `--low-latency`
   * or `--no-low-latency` decides by. Opening the device only asks for "no limit" until it is closed.
   */
  static available(path = CPU_LATENCY_DEVICE): boolean {
    try {
      closeSync(openSync(path, constants.O_WRONLY));
      return true;
    } catch {
      return false;
    }
  }

  /** Counts one request; starts the rate timer when it is not running. */
  note(): void {
    this.#count++;
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(() => this.#tick(), this.policy.tickMs);
      this.#timer.unref();
    }
  }

  #tick(): void {
    const n = this.#count;
    this.#count = 0;
    if (n >= this.policy.burstRequests) {
      this.#quiet = 0;
      if (!this.#holding) this.#set(true);
      return;
    }
    if (++this.#quiet < this.policy.quietTicks) return;
    if (this.#holding) this.#set(false);
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#quiet = 0;
  }

  #set(holding: boolean): void {
    if (this.#closed) return;
    try {
      setLimit(this.fd, holding ? 0 : NO_LATENCY_LIMIT);
    } catch (e) {
      // Runs from a timer: a failure must not end the agent. Closing the device drops any request it made.
      this.log(`--low-latency stopped: writing ${CPU_LATENCY_DEVICE} failed: ${(e as Error).message}`);
      this.#shut();
      return;
    }
    const now = Date.now();
    if (holding) {
      this.#holds++;
      this.#since = now;
    } else this.#heldMs += now - this.#since;
    this.#holding = holding;
  }

  /** Stops the timer and closes the device once; the kernel drops the request with the descriptor. */
  #shut(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#holding) this.#heldMs += Date.now() - this.#since;
    this.#holding = false;
    closeSync(this.fd);
  }

  status(): WakeLatencyStatus {
    return {
      holding: this.#holding,
      holds: this.#holds,
      heldMs: this.#heldMs + (this.#holding ? Date.now() - this.#since : 0),
    };
  }

  /** Ends any hold and closes the device. */
  close(): void {
    if (this.#closed) return;
    if (this.#holding) this.#set(false);
    if (!this.#closed) this.#shut();
  }
}
