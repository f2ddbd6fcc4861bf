/**
 * @module mount/fuse/native
 * The libfuse 3 binding's surface (native/fuse3/fuse3.c) and loading it from
 * the package's native/fuse3/build, with a message that says how to build it
 * when it is missing.
 */
import { createRequire } from 'node:module';
import { nativeBuild } from '../../common/package-root.js';

/** The binding's own surface (native/fuse3/fuse3.c). */
export interface Native {
  mount(
    mountpoint: string,
    options: string[],
    writeback: boolean,
    dispatch: Dispatch,
    spinMicros: number,
  ): NativeHandle;
  unmount(h: NativeHandle): Promise<void>;
  lazyUnmount(path: string): number;
  invalidate(h: NativeHandle, ino: number, offset: number, length: number, name: string | undefined): Promise<void>;
  replyErr(h: NativeHandle, id: number, errno: number): number;
  replyEntry(h: NativeHandle, id: number, entry: Float64Array): number;
  replyCreate(h: NativeHandle, id: number, entry: Float64Array, open: Float64Array): number;
  replyAttr(h: NativeHandle, id: number, attr: Float64Array, timeout: number): number;
  replyOpen(h: NativeHandle, id: number, open: Float64Array): number;
  replyReadlink(h: NativeHandle, id: number, target: string): number;
  replyBuf(h: NativeHandle, id: number, data: Buffer): number;
  replyWrite(h: NativeHandle, id: number, count: number): number;
  replyStatfs(h: NativeHandle, id: number, st: Float64Array): number;
  /** Returns how many entries were sent, -1 if the reply failed. */
  replyDir(h: NativeHandle, id: number, names: string[], numbers: Float64Array, plus: boolean): number;
}
export type NativeHandle = { readonly __fuse3: unique symbol };
export type Dispatch = (
  op: string,
  id: number,
  ctx: number[],
  s1: string | undefined,
  s2: string | undefined,
  data: Buffer | undefined,
  n: number[],
) => void;

let loaded: Native | undefined;
export function binding(): Native {
  if (loaded) return loaded;
  const path = nativeBuild('fuse3', 'fuse3.node', 'the libfuse 3 binding needs libfuse3-dev and pkg-config');
  loaded = createRequire(import.meta.url)(path) as Native;
  return loaded;
}
