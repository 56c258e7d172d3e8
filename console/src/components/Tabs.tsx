/**
 * Tabs as the WAI-ARIA tablist pattern: role=tablist / tab / tabpanel, aria-selected and
 * aria-controls, only the selected tab in the Tab order, and the arrow keys (Home, End) moving the
 * selection among them, so the tabs work from the keyboard and are announced as tabs.
 */
import { useRef, type KeyboardEvent, type ReactNode } from "react";

export interface TabsProps<T extends string> {
  /** Names the tab list for assistive technology. */
  label: string;
  /** Prefix of the tabs' and panel's element ids (unique on the page). */
  idPrefix: string;
  /** Prefix of the tabs' data-testid (`<prefix>-<tab>`). */
  testIdPrefix?: string;
  tabs: readonly T[];
  selected: T;
  onSelect: (tab: T) => void;
  /** A tab's visible text (the tab's own name by default). */
  title?: (tab: T) => ReactNode;
  className?: string;
}

export const tabId = (idPrefix: string, tab: string) => `${idPrefix}-tab-${tab}`;
export const panelId = (idPrefix: string) => `${idPrefix}-panel`;

export function Tabs<T extends string>({ label, idPrefix, testIdPrefix = idPrefix, tabs, selected, onSelect, title, className }: TabsProps<T>) {
  const list = useRef<HTMLDivElement>(null);
  function onKeyDown(event: KeyboardEvent) {
    const index = tabs.indexOf(selected);
    const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length];
    onSelect(tab);
    list.current?.querySelector<HTMLElement>(`#${CSS.escape(tabId(idPrefix, tab))}`)?.focus();
  }
  return (
    <div role="tablist" aria-label={label} className={`tabs ${className ?? ""}`} ref={list} onKeyDown={onKeyDown}>
      {tabs.map((tab) => (
        <button
          key={tab}
          type="button"
          role="tab"
          id={tabId(idPrefix, tab)}
          aria-selected={tab === selected}
          aria-controls={panelId(idPrefix)}
          tabIndex={tab === selected ? 0 : -1}
          className={tab === selected ? "active" : ""}
          onClick={() => onSelect(tab)}
          data-testid={`${testIdPrefix}-${tab}`}
        >
          {title ? title(tab) : tab}
        </button>
      ))}
    </div>
  );
}

/** The panel of the selected tab, labelled by it. */
export function TabPanel({ idPrefix, selected, children, className }: { idPrefix: string; selected: string; children: ReactNode; className?: string }) {
  return (
    <div role="tabpanel" id={panelId(idPrefix)} aria-labelledby={tabId(idPrefix, selected)} className={className}>
      {children}
    </div>
  );
}
