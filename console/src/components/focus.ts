/**
 * Where the focus goes after a form was sent with a mouse click: its submit button is disabled while
 * the request runs, and a disabled button loses the focus to the page's body, where a keyboard or
 * screen-reader user would have to start again from the top. The result (the message, or the error)
 * takes it then; a focus still in the form (Enter in a field) is left where it is.
 */
export function focusWasLost(): boolean {
  const active = document.activeElement;
  return !active || active === document.body || (active as HTMLButtonElement).disabled === true;
}

/** Moves the focus to `element` (made focusable by tabIndex={-1}) when it was lost. */
export function takeLostFocus(element: HTMLElement | null | undefined): void {
  if (element && focusWasLost()) element.focus();
}
