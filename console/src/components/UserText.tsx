/**
 * Text that came from people rather than from the console (owner ids, plan names, reasons, actor
 * ids, operation names as typed, alert messages, the server's error messages), shown inline.
 *
 * Each is a bidi isolate (`<bdi>`, CSS `unicode-bidi: isolate`): a right-to-left override (U+202E)
 * or right-to-left letters inside it are laid out within it, and never reorder the console's text
 * around it ("owner … · plan … · opened …" stays in that order). It also breaks anywhere when one
 * word is wider than the line (styles.css: `.user-text`), so a 255-character owner id does not widen
 * the page; in a table cell it keeps its words whole, the table scrolling inside its panel instead.
 */
import type { ReactNode } from "react";

export function UserText({ children, className, testId, title }: { children: ReactNode; className?: string; testId?: string; title?: string }) {
  return (
    <bdi className={className ? `user-text ${className}` : "user-text"} data-testid={testId} title={title}>
      {children}
    </bdi>
  );
}

/** First strong isolate … pop directional isolate: the same isolation inside a plain string. */
const FSI = "\u2068";
const PDI = "\u2069";

/**
 * User text isolated inside a string the console composes, where an element cannot go (a title
 * attribute, an error's message): the characters FSI … PDI do what `<bdi>` does.
 */
export function isolated(text: string): string {
  return `${FSI}${text}${PDI}`;
}
