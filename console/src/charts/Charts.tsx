/**
 * The console's charts (recharts), loaded on demand (React.lazy) so the first paint does not wait
 * for the chart library.
 */
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { UsageFragment } from "../generated/graphql";
import { colourOf, fmtDay } from "../components/format";

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
  return (
    <figure className="chart" data-testid="chart-per-day">
      <figcaption>Credits per day by type ({timeZone})</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: -16 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          {/* Days as every date the console prints: "02 Dec" on the axis, "02 Dec 2026" in the tooltip. */}
          <XAxis dataKey="day" tickFormatter={(d: string) => fmtDay(d, false)} fontSize={11} />
          <YAxis allowDecimals={false} fontSize={11} />
          <Tooltip labelFormatter={(d) => fmtDay(String(d))} />
          <Legend />
          {types.map((t) => (
            <Bar key={t} dataKey={t} stackId="credits" fill={colourOf(t, types)} isAnimationActive={false} maxBarSize={36} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
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
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: -16 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="operation" fontSize={11} />
          <YAxis allowDecimals={false} fontSize={11} />
          <Tooltip />
          <Legend />
          <Bar dataKey="held" name="held (estimate)" fill="#9db4ff" isAnimationActive={false} maxBarSize={36} />
          <Bar dataKey="cost" name={actual === "settled" ? "settled (actual)" : "cost"} fill="#4f7cff" isAnimationActive={false} maxBarSize={36} />
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
  testId,
}: {
  buckets: UsageFragment[];
  types: readonly string[];
  title: string;
  label: (key: string) => string;
  testId: string;
}) {
  // One row per group; a type's credits under `type:<name>` (type names are data: "name" could be one).
  const groups = new Map<string, { name: string; total: number; byType: Record<string, number> }>();
  for (const b of buckets) {
    const group = groups.get(b.key) ?? { name: label(b.key), total: 0, byType: {} };
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
        <BarChart data={data} layout="vertical" margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          <XAxis type="number" allowDecimals={false} fontSize={11} />
          <YAxis type="category" dataKey="name" width={110} fontSize={11} />
          <Tooltip />
          <Legend />
          {shown.map((t) => (
            <Bar key={t} dataKey={`type:${t}`} name={t} stackId="credits" fill={colourOf(t, types)} isAnimationActive={false} maxBarSize={36} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

export { shortOperation };
