/**
 * @module sandbox/host/subordinate-ids
 * The host id range sandbox root maps to (root:100000:65536 in /etc/subuid
 * and /etc/subgid, written by setup.sh): uid/gid N inside a sandbox is
 * SUBORDINATE_BASE + N on the host, so nothing a sandbox owns is owned by a
 * real host user, and host root is not mapped inside at all.
 */

/** First host uid/gid of the range: sandbox root. */
export const SUBORDINATE_BASE = 100000;
/** Ids in the range: sandbox ids 0..65535. */
export const SUBORDINATE_COUNT = 65536;

/** `unshare` options that enter a new user namespace whose root is the subordinate range's first id. */
export function subordinateUserArgs(): string[] {
  const map = `${SUBORDINATE_BASE},0,${SUBORDINATE_COUNT}`;
  return ['--user', `--map-users=${map}`, `--map-groups=${map}`, '--setuid', '0', '--setgid', '0'];
}
