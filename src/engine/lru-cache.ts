/**
 * @module engine/lru-cache
 * A small least-recently-used cache bounded by a cost budget, for decoded
 * immutable tree nodes (safe to share: content-addressed nodes never change).
 */
export class LruCache<K, V> {
  private readonly items = new Map<K, { value: V; cost: number }>();
  private total = 0;

  constructor(private readonly budget: number) {}

  /** The cached value, marked most recently used. */
  get(key: K): V | undefined {
    const hit = this.items.get(key);
    if (!hit) return undefined;
    this.items.delete(key);
    this.items.set(key, hit);
    return hit.value;
  }

  /** Adds a value; evicts the least recently used until the budget holds. */
  set(key: K, value: V, cost: number): void {
    const old = this.items.get(key);
    if (old) { this.total -= old.cost; this.items.delete(key); }
    if (cost > this.budget) return;
    this.items.set(key, { value, cost });
    this.total += cost;
    for (const [k, v] of this.items) {
      if (this.total <= this.budget) break;
      this.items.delete(k);
      this.total -= v.cost;
    }
  }
}
