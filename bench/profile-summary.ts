/**
 * Reads a V8 CPU profile (`npm run bench -- --profile dir` makes the server write one) and prints
 * where the time went: self time by package and by function, and inclusive time by function, as a
 * share of the profile or, with --requests N, in microseconds per request.
 *
 *   npx tsx bench/profile-summary.ts bench/profiles/CPU.….cpuprofile --requests 52000 [--filter regex] [--top 40]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  return url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench|test)\//, "$1/");
}

function functionKey(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  return `${functionName || "(anonymous)"} ${shortUrl(url)}${url ? `:${lineNumber + 1}` : ""}`;
}

function packageKey(node: ProfileNode): string {
  const url = node.callFrame.url;
  if (!url) return node.callFrame.functionName || "(native)";
  const inPackage = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
  if (inPackage) return inPackage[1];
  return url.startsWith("node:") ? url : shortUrl(url);
}

function main(): void {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith("--"));
  const option = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (!file) throw new Error("usage: profile-summary <file.cpuprofile> [--requests N] [--filter regex] [--top N]");
  const requests = Number(option("requests") ?? 0);
  const filter = new RegExp(option("filter") ?? ".");
  const top = Number(option("top") ?? 30);

  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const timeById = new Map<number, number>();
  profile.samples.forEach((id, i) => timeById.set(id, (timeById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...timeById.values()].reduce((a, b) => a + b, 0);

  const selfByPackage = new Map<string, number>();
  const selfByFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, t: number) => map.set(key, (map.get(key) ?? 0) + t);
  for (const [id, t] of timeById) {
    const node = byId.get(id) as ProfileNode;
    add(selfByPackage, packageKey(node), t);
    add(selfByFunction, functionKey(node), t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = functionKey(byId.get(cur) as ProfileNode);
      if (!seen.has(key)) add(inclusive, key, t);
      seen.add(key);
    }
  }

  const show = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    const rows = [...map].filter(([key]) => filter.test(key)).sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [key, t] of rows) {
      const value = requests > 0 ? `${(t / requests).toFixed(1).padStart(7)} µs/req` : `${((100 * t) / total).toFixed(1).padStart(5)}%`;
      console.log(`${value}  ${key}`);
    }
  };
  console.log(`${(total / 1e6).toFixed(1)} s sampled${requests > 0 ? `, ${requests} requests` : ""}`);
  show("self time by package", selfByPackage);
  show("self time by function", selfByFunction);
  show("inclusive time by function", inclusive);
}

main();
