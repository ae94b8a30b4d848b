/**
 * The element with this id in the view's markup (webview/<view>/index.html), checked to be of the given class: a
 * missing or different element fails at once, naming the id, instead of later as a null dereference.
 */
export function byId(id: string): HTMLElement;
export function byId<T extends HTMLElement>(id: string, type: abstract new () => T): T;
export function byId(id: string, type: abstract new () => HTMLElement = HTMLElement): HTMLElement {
  // Typed as Element so that the message below can still name what a mismatch found.
  const e: Element | null = document.getElementById(id);
  if (!(e instanceof type))
    throw new Error(`#${id} is ${e ? `a <${e.tagName.toLowerCase()}>, not a ${type.name}` : 'not in the view'}`);
  return e;
}
