/**
 * A small least-recently-used cache bounded both by entry count and by total weight (the caller's
 * measure of memory, e.g. characters of a query). A Map keeps insertion order, so re-inserting on
 * every hit makes its first key the least recently used.
 */
export interface LruCacheOptions {
  maxEntries: number;
  maxWeight: number;
}

export class LruCache<K, V> {
  private readonly entries = new Map<K, { value: V; weight: number }>();
  private totalWeight = 0;

  constructor(private readonly options: LruCacheOptions) {}

  get size(): number {
    return this.entries.size;
  }

  get weight(): number {
    return this.totalWeight;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores a value; one heavier than the whole budget is not stored at all. */
  set(key: K, value: V, weight = 1): void {
    const existing = this.entries.get(key);
    if (existing) {
      this.entries.delete(key);
      this.totalWeight -= existing.weight;
    }
    if (weight > this.options.maxWeight) return;
    this.entries.set(key, { value, weight });
    this.totalWeight += weight;
    while (this.entries.size > this.options.maxEntries || this.totalWeight > this.options.maxWeight) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.totalWeight -= this.entries.get(oldest.value)!.weight;
      this.entries.delete(oldest.value);
    }
  }
}
