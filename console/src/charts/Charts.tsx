/**
 * The console's charts (recharts), loaded on demand (React.lazy) so the first paint does not wait
 * for the chart library.
 *
 * For screen readers and keyboards: each chart's svg (recharts' role=application, in the Tab order)
 * is named after its caption, and the charts of credits by type have their figures as a table too,
 * under "Show as a table" (a chart's bars say nothing to a screen reader).
 */
import type { ReactNode } from "react";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { UsageFragment } from "../generated/graphql";
import { colourOf, fmtDay, fmtInt, fmtTick } from "../components/format";

/** What a chart would hold (the estimate): paler than what it cost, yet 3:1 against white (WCAG's contrast for graphics). */
const HELD_FILL = "#6f8ef0";
/** The held bars' name in the legend: text needs 4.5:1, more than the pale bar has. */
const HELD_TEXT = "#4561c4";
const COST_FILL = "#2f5fe6";

/**
 * The axis of credits: ticks short at any size ("6B", "1.5M": fmtTick) and as wide as they are
 * (recharts' `width="auto"` measures them), so a large figure is neither cut at the chart's left
 * edge nor shown as its last digits.
 */
const CREDITS_AXIS = { allowDecimals: false, tickFormatter: (n: number) => fmtTick(n), fontSize: 11 } as const;
/** A tooltip's figures grouped as every other number the console prints ("6,000,000,000"). */
const tooltipFigure = (value: unknown) => (typeof value === "number" ? fmtInt(value) : String(value ?? ""));

/**
 * A chart's figures as a table, folded under its chart: one row per `rows` entry, one column per
 * series, each cell the figure the bar shows (empty for none).
 */
function ChartTable({ caption, rowHeader, rows, columns, testId }: {
  caption: string;
  rowHeader: string;
  rows: { key: string; label: ReactNode; values: Record<string, number> }[];
  columns: readonly string[];
  testId: string;
}) {
  return (
    <details className="chart-table" data-testid={testId}>
      <summary>Show as a table</summary>
      <div className="table-scroll" tabIndex={0} role="region" aria-label={caption}>
        <table>
          <caption className="visually-hidden">{caption}</caption>
          <thead>
            <tr>
              <th scope="col">{rowHeader}</th>
              {columns.map((c) => (
                <th scope="col" className="num" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.key}>
                <th scope="row">{row.label}</th>
                {columns.map((c) => (
                  <td className="num" key={c}>
                    {row.values[c] ? fmtInt(row.values[c]) : ""}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}

/** Every calendar day from `fromIso` to today, as YYYY-MM-DD in `timeZone`. */
function daysSince(fromIso: string, timeZone: string): string[] {
  const format = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const days = new Set<string>();
  for (let t = new Date(fromIso).getTime(); t <= Date.now(); t += 3_600_000 * 6) days.add(format.format(t));
  days.add(format.format(Date.now()));
  return [...days].sort();
}

/** Credits per day, stacked by credit type (creditUsage / creditStats grouped by DAY then TYPE). */
export function CreditsPerDayChart({ buckets, types, from, timeZone }: { buckets: UsageFragment[]; types: readonly string[]; from: string; timeZone: string }) {
  const rows = new Map<string, Record<string, number | string>>();
  for (const day of daysSince(from, timeZone)) rows.set(day, { day });
  for (const b of buckets) {
    const row = rows.get(b.key) ?? { day: b.key };
    row[b.subKey ?? "credits"] = b.credits;
    rows.set(b.key, row);
  }
  const data = [...rows.values()].sort((a, b) => String(a.day).localeCompare(String(b.day)));
  const caption = `Credits per day by type (${timeZone})`;
  return (
    <figure className="chart" data-testid="chart-per-day">
      <figcaption>{caption}</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 4 }} aria-label={caption}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          {/* Days as every date the console prints: "02 Dec" on the axis, "02 Dec 2026" in the tooltip. */}
          <XAxis dataKey="day" tickFormatter={(d: string) => fmtDay(d, false)} fontSize={11} />
          <YAxis {...CREDITS_AXIS} width="auto" />
          <Tooltip labelFormatter={(d) => fmtDay(String(d))} formatter={tooltipFigure} />
          <Legend />
          {types.map((t) => (
            <Bar key={t} dataKey={t} stackId="credits" fill={colourOf(t, types)} isAnimationActive={false} maxBarSize={36} />
          ))}
        </BarChart>
      </ResponsiveContainer>
      <ChartTable
        caption={caption}
        rowHeader="Day"
        columns={types}
        rows={data.map((row) => ({ key: String(row.day), label: fmtDay(String(row.day)), values: numbersOf(row) }))}
        testId="chart-per-day-table"
      />
    </figure>
  );
}

/** A chart row's figures by series (its label, a string, left out). */
function numbersOf(row: Record<string, number | string>): Record<string, number> {
  return Object.fromEntries(Object.entries(row).filter((entry): entry is [string, number] => typeof entry[1] === "number"));
}

const shortOperation = (op: string) => op.replace(/^(Mutation|Query)\./, "") || "(none)";

/**
 * Per operation: what was held (the estimate) against what the calls cost (net of releases and
 * refunds), or with `actual: "settled"` against what they settled at (held less released, refunds
 * not counted: the estimator's accuracy).
 */
export function OperationCostChart({
  buckets,
  title = "Per operation: held (estimate) vs cost",
  actual = "cost",
}: {
  buckets: UsageFragment[];
  title?: string;
  actual?: "cost" | "settled";
}) {
  const data = buckets.map((b) => ({
    operation: shortOperation(b.key),
    held: b.estimated,
    cost: actual === "settled" ? b.estimated - b.released : b.credits,
    calls: b.calls,
  }));
  return (
    <figure className="chart" data-testid="chart-per-operation">
      <figcaption>{title}</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 4 }} aria-label={title}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="operation" fontSize={11} />
          <YAxis {...CREDITS_AXIS} width="auto" />
          <Tooltip formatter={tooltipFigure} />
          <Legend formatter={(value: string, entry) => <span style={{ color: entry.color === HELD_FILL ? HELD_TEXT : entry.color }}>{value}</span>} />
          <Bar dataKey="held" name="held (estimate)" fill={HELD_FILL} isAnimationActive={false} maxBarSize={36} />
          <Bar dataKey="cost" name={actual === "settled" ? "settled (actual)" : "cost"} fill={COST_FILL} isAnimationActive={false} maxBarSize={36} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

/**
 * A horizontal bar chart of the largest groups by credits (top operations, top subscriptions), from
 * buckets split by credit type (thenBy: TYPE): each group's bar is coloured by its type as the other
 * charts are, stacked when a group spends several types, with a legend of the types shown.
 */
export function TopChart({
  buckets,
  types,
  title,
  label,
  rowHeader,
  testId,
}: {
  buckets: UsageFragment[];
  types: readonly string[];
  title: string;
  label: (key: string) => string;
  /** The table's heading of its rows' names ("Operation", "Subscription"). */
  rowHeader: string;
  testId: string;
}) {
  // One row per group; a type's credits under `type:<name>` (type names are data: "name" could be one).
  const groups = new Map<string, { key: string; name: string; total: number; byType: Record<string, number> }>();
  for (const b of buckets) {
    const group = groups.get(b.key) ?? { key: b.key, name: label(b.key), total: 0, byType: {} };
    const type = b.subKey ?? "credits";
    group.byType[type] = (group.byType[type] ?? 0) + b.credits;
    group.total += b.credits;
    groups.set(b.key, group);
  }
  const top = [...groups.values()].sort((a, b) => b.total - a.total).slice(0, 8);
  const data = top.map((g) => ({ name: g.name, ...Object.fromEntries(Object.entries(g.byType).map(([t, credits]) => [`type:${t}`, credits])) }));
  // The types these bars spend, in the console's order of types (so the legend reads as the others do).
  const present = new Set(top.flatMap((g) => Object.keys(g.byType).filter((t) => g.byType[t] > 0)));
  const shown = [...types.filter((t) => present.has(t)), ...[...present].filter((t) => !types.includes(t)).sort()];
  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} layout="vertical" margin={{ top: 8, right: 16, bottom: 0, left: 8 }} aria-label={title}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          <XAxis type="number" {...CREDITS_AXIS} />
          <YAxis type="category" dataKey="name" width={110} fontSize={11} />
          <Tooltip formatter={tooltipFigure} />
          <Legend />
          {shown.map((t) => (
            <Bar key={t} dataKey={`type:${t}`} name={t} stackId="credits" fill={colourOf(t, types)} isAnimationActive={false} maxBarSize={36} />
          ))}
        </BarChart>
      </ResponsiveContainer>
      <ChartTable
        caption={title}
        rowHeader={rowHeader}
        columns={shown}
        rows={top.map((g) => ({ key: g.key, label: g.name, values: g.byType }))}
        testId={`${testId}-table`}
      />
    </figure>
  );
}

export { shortOperation };
