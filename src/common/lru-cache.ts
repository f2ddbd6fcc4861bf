/**
 * @module common/lru-cache
 * A small least-recently-used cache bounded by a cost budget, for decoded
 * immutable tree nodes (safe to share: content-addressed nodes never change).
 */
export class LruCache<K, V> {
  private readonly items = new Map<K, { value: V; cost: number; used: number }>();
  private total = 0;
  /** Counts insertions and moves to the recent end; `used` is its value at an item's last move. */
  private clock = 0;

  constructor(private readonly budget: number) {}

  /**
   * The cached value, marked most recently used. An item moved among the most
   * recent half stays where it is: re-inserting a hot item on every hit (a
   * wide directory's top node, read by every lookup in it) churns the Map for
   * nothing, since it is nowhere near eviction.
   */
  get(key: K): V | undefined {
    const hit = this.items.get(key);
    if (!hit) return undefined;
    if (this.clock - hit.used > this.items.size / 2) {
      this.items.delete(key);
      this.items.set(key, hit);
      hit.used = ++this.clock;
    }
    return hit.value;
  }

  /** Adds a value; evicts the least recently used until the budget holds. */
  set(key: K, value: V, cost: number): void {
    const old = this.items.get(key);
    if (old) {
      this.total -= old.cost;
      this.items.delete(key);
    }
    if (cost > this.budget) return;
    this.items.set(key, { value, cost, used: ++this.clock });
    this.total += cost;
    for (const [k, v] of this.items) {
      if (this.total <= this.budget) break;
      this.items.delete(k);
      this.total -= v.cost;
    }
  }
}
