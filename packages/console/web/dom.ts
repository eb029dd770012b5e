export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`#${id} is missing from the page`)
  return element as T
}

/** Replaces a <dl>'s content with label/value pairs. */
export function renderStats (list: HTMLElement, entries: Array<[string, string]>): void {
  list.replaceChildren(...entries.flatMap(([label, value]) => {
    const term = document.createElement('dt')
    term.textContent = label
    const detail = document.createElement('dd')
    detail.textContent = value
    return [term, detail]
  }))
}

export function showError (element: HTMLElement, err: unknown): void {
  element.textContent = err === undefined ? '' : err instanceof Error ? err.message : String(err)
}
