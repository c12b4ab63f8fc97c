/**
 * Calls in flight by id, on both sides: a hash table of its own rather
 * than a Map. A Map whose keys keep changing (every call a new id, set then
 * deleted) fills with deleted entries and is rebuilt every few calls: an
 * allocation and a copy per call or two, on the path every call takes.
 * Here a set and a delete allocate nothing.
 *
 * Open addressing with linear probing; a delete moves later entries of the
 * same run back (no tombstones, so lookups never slow down with churn).
 * Ids are mixed with a random per-process seed before they pick a slot, so a
 * peer choosing its call ids cannot make them collide on purpose. The
 * table grows at half full and shrinks once a burst is over; a table
 * never used holds no arrays.
 *
 * A table holding one entry alone (a connection with one call in flight
 * at a time, the most common kind) keeps it in two fields of its own: no
 * hashing, and its arrays are not touched. A second entry moves it into
 * the arrays; once the table is empty, the next entry is kept alone again.
 */

/** A connection with a call or two in flight at a time (most) keeps the smallest table: it is held per connection. */
const MIN_CAPACITY = 4;
/** What a table never used holds: shared, and never written to (a set resizes first). */
const NO_IDS: never[] = [];
const NO_VALUES: never[] = [];
/** Random per process: a peer cannot know it, and no table carries a copy. */
const SEED = (Math.random() * 0x100000000) | 0;

export class IdTable<T> {
  /** Plain arrays, not a Uint32Array: a typed array's own object costs more than small ids (held per connection). */
  private ids: number[] = NO_IDS;
  /** undefined: a free slot. */
  private values: (T | undefined)[] = NO_VALUES;
  private mask = -1;
  /** Entries, the one kept alone included. */
  private count = 0;
  /** The entry kept alone (`oneValue` undefined: none; then the entries, if any, are in the arrays). */
  private oneId = 0;
  private oneValue: T | undefined = undefined;

  get size(): number {
    return this.count;
  }

  private slot(id: number): number {
    // Every bit of the id must reach the low bits that pick the slot: a
    // multiply alone leaves them to the id's low bits, so ids that differ
    // only above them (i << 16) would share one run whatever the seed.
    let h = id ^ SEED;
    h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
    h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
    return (h ^ (h >>> 16)) & this.mask;
  }

  get(id: number): T | undefined {
    if (this.oneValue !== undefined) return this.oneId === id ? this.oneValue : undefined;
    if (this.count === 0) return undefined;
    const values = this.values;
    for (let i = this.slot(id); ; i = (i + 1) & this.mask) {
      const v = values[i];
      if (v === undefined) return undefined;
      if (this.ids[i] === id) return v;
    }
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  /** Add or replace the value of `id` (an integer 0 ≤ id < 2^32; `value` never undefined). */
  set(id: number, value: T): void {
    if (this.count === 0) {
      this.oneId = id;
      this.oneValue = value;
      this.count = 1;
      return;
    }
    const alone = this.oneValue;
    if (alone !== undefined) {
      if (this.oneId === id) {
        this.oneValue = value;
        return;
      }
      // A second entry: both go in the arrays.
      this.oneValue = undefined;
      this.count = 0;
      this.put(this.oneId, alone);
    }
    this.put(id, value);
  }

  /** Add or replace in the arrays (nothing is kept alone). */
  private put(id: number, value: T): void {
    if ((this.count + 1) * 2 > this.values.length) this.resize(Math.max(MIN_CAPACITY, this.values.length * 2));
    const values = this.values;
    let i = this.slot(id);
    for (; values[i] !== undefined; i = (i + 1) & this.mask) {
      if (this.ids[i] === id) {
        values[i] = value;
        return;
      }
    }
    this.ids[i] = id;
    values[i] = value;
    this.count++;
  }

  delete(id: number): boolean {
    if (this.oneValue !== undefined) {
      if (this.oneId !== id) return false;
      this.oneValue = undefined;
      this.count = 0;
      return true;
    }
    if (this.count === 0) return false;
    const values = this.values;
    const ids = this.ids;
    const mask = this.mask;
    let i = this.slot(id);
    for (; ; i = (i + 1) & mask) {
      if (values[i] === undefined) return false;
      if (ids[i] === id) break;
    }
    // Backward shift: an entry further along the run moves into the hole
    // unless its own slot lies (cyclically) after the hole.
    let hole = i;
    for (let j = (i + 1) & mask; values[j] !== undefined; j = (j + 1) & mask) {
      const home = this.slot(ids[j]!);
      const movable = hole <= j ? home <= hole || home > j : home <= hole && home > j;
      if (movable) {
        ids[hole] = ids[j]!;
        values[hole] = values[j];
        hole = j;
      }
    }
    values[hole] = undefined;
    this.count--;
    // Kept while small (one call at a time must not reallocate per call); a burst's large table is given back.
    if (values.length > 64 && this.count * 8 < values.length) this.resize(values.length / 2);
    return true;
  }

  /** The values, in no particular order (a copy: the table may change while it is read). */
  valuesList(): T[] {
    const out: T[] = [];
    if (this.oneValue !== undefined) out.push(this.oneValue);
    for (const v of this.values) if (v !== undefined) out.push(v);
    return out;
  }

  clear(): void {
    this.oneValue = undefined;
    this.ids = NO_IDS;
    this.values = NO_VALUES;
    this.mask = -1;
    this.count = 0;
  }

  private resize(capacity: number): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    this.ids = new Array<number>(capacity).fill(0);
    this.values = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    this.count = 0;
    for (let i = 0; i < oldValues.length; i++) {
      const v = oldValues[i];
      if (v !== undefined) this.put(oldIds[i]!, v);
    }
  }
}
