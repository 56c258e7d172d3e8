/**
 * The console's charts (recharts), loaded on demand (React.lazy) so the first paint does not wait
 * for the chart library.
 */
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { UsageFragment } from "../generated/graphql";
import { colourOf } from "../components/format";

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
          <XAxis dataKey="day" tickFormatter={(d: string) => d.slice(5)} fontSize={11} />
          <YAxis allowDecimals={false} fontSize={11} />
          <Tooltip />
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

/** Per operation: what was held (the estimate) against what the calls cost (settled at the metered actual). */
export function OperationCostChart({ buckets, title = "Per operation: held (estimate) vs cost" }: { buckets: UsageFragment[]; title?: string }) {
  const data = buckets.map((b) => ({ operation: shortOperation(b.key), held: b.estimated, cost: b.credits, calls: b.calls }));
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
          <Bar dataKey="cost" name="cost" fill="#4f7cff" isAnimationActive={false} maxBarSize={36} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

/** A horizontal bar chart of the largest groups by credits (top operations, top subscriptions). */
export function TopChart({ buckets, title, label, testId }: { buckets: UsageFragment[]; title: string; label: (key: string) => string; testId: string }) {
  const data = [...buckets]
    .sort((a, b) => b.credits - a.credits)
    .slice(0, 8)
    .map((b) => ({ name: label(b.key), credits: b.credits, calls: b.calls }));
  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} layout="vertical" margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" horizontal={false} />
          <XAxis type="number" allowDecimals={false} fontSize={11} />
          <YAxis type="category" dataKey="name" width={110} fontSize={11} />
          <Tooltip />
          <Bar dataKey="credits" fill="#22a06b" isAnimationActive={false} maxBarSize={36} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

export { shortOperation };
