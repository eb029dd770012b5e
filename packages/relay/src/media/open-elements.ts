/**
 * The elements (WebM) or boxes (MP4) a walker is inside, innermost last, in
 * fixed typed arrays: opening and closing one allocates nothing. A walker
 * enters only a few kinds of elements, so `maxDepth` is small and a stream
 * nesting deeper is malformed.
 */
export class OpenElements {
  readonly #ids: Uint32Array
  /** Stream offset after each element; Infinity for an element of unknown size. */
  readonly #ends: Float64Array
  #depth = 0

  constructor (maxDepth: number) {
    this.#ids = new Uint32Array(maxDepth)
    this.#ends = new Float64Array(maxDepth)
  }

  get depth (): number { return this.#depth }

  /** The innermost element's ID (box type as a uint32); 0, never an ID, when none is open. */
  get innermost (): number { return this.#depth === 0 ? 0 : this.#ids[this.#depth - 1]! }

  /** Stream offset after the innermost element; Infinity when it has unknown size or none is open. */
  get innermostEnd (): number { return this.#depth === 0 ? Infinity : this.#ends[this.#depth - 1]! }

  /** Opens an element that ends at stream offset `end` (Infinity: unknown size); false when it would nest too deep. */
  open (id: number, end: number): boolean {
    if (this.#depth === this.#ids.length) return false
    this.#ids[this.#depth] = id
    this.#ends[this.#depth] = end
    this.#depth++
    return true
  }

  /** Closes the innermost element; returns its ID. */
  close (): number {
    return this.#ids[--this.#depth]!
  }

  /**
   * Closes, innermost first, the elements that end at stream offset `offset`,
   * calling `closed` with each one's ID. False when one ended before it (a
   * child overran its parent): the stream is malformed.
   */
  closeEnded (offset: number, closed: (id: number) => void): boolean {
    while (this.#depth > 0) {
      const end = this.#ends[this.#depth - 1]!
      if (end > offset) return true
      if (end < offset) return false
      closed(this.close())
    }
    return true
  }
}
