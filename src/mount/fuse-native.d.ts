/** The part of fuse-native (which ships no types) the mount agent uses. */
declare module 'fuse-native' {
  type Cb = (...args: any[]) => void;
  export interface FuseOptions {
    mkdir?: boolean;
    force?: boolean;
    timeout?: number | false;
    autoCache?: boolean;
    kernelCache?: boolean;
    attrTimeout?: number;
    entryTimeout?: number;
    fsname?: string;
    subtype?: string;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    debug?: boolean;
  }
  export type FuseOps = Record<string, (...args: any[]) => void>;
  class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    protected _fuseOptions(): string;
    static unmount(mnt: string, cb: Cb): void;
    static readonly ENOENT: number;
  }
  export default Fuse;
}
