// A tiny event emitter: `on` returns an unsubscribe function, and a throwing
// listener never stops the others (it is reported on the console instead).

/** @template {Record<string, any>} Events */
export class Emitter {
  /** @type {Map<string, Set<(detail: any) => void>>} */
  #handlers = new Map();

  /**
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {(detail: Events[K]) => void} fn
   * @returns {() => void} call to unsubscribe
   */
  on(type, fn) {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  /**
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {(detail: Events[K]) => void} fn
   */
  off(type, fn) {
    this.#handlers.get(type)?.delete(fn);
  }

  /**
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {Events[K]} detail
   */
  emit(type, detail) {
    for (const fn of [...(this.#handlers.get(type) ?? [])]) {
      try {
        fn(detail);
      } catch (e) {
        console.error(`listener for "${type}" threw`, e);
      }
    }
  }
}
