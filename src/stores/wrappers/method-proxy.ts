/**
 * @module stores/wrappers/method-proxy
 * What the store wrappers share: a view of a store (BlobStore or
 * MetadataStore) whose every method call goes through one function, so a
 * wrapper is written once for both interfaces and for methods added later.
 */

/** Handles one call: `method` is its name, `call` runs it on the wrapped store with its arguments. */
export type MethodHook = (method: string, args: unknown[], call: () => unknown) => unknown;

/**
 * `store` with every method call routed through `hook` (properties that are
 * not functions pass through). The wrapper is the same type as the store.
 */
export function interceptMethods<S extends object>(store: S, hook: MethodHook): S {
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const fn = value as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => hook(prop, args, () => fn.apply(target, args));
    },
  });
}
