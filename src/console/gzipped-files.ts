/**
 * The console's text files (scripts, styles, index.html) gzipped for clients that accept it, each
 * compressed once per build and kept in memory. docs/console.md measures the first load in gzip
 * (about 85 kB of script) and an outside audit found it sent whole (about 300 kB, 735 kB once a
 * chart showed). The build is a few dozen files, so the cache is bounded by entry count.
 */
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import Negotiator from "negotiator";

const gzipAsync = promisify(gzip);

/** File types worth compressing (images and fonts are compressed already). */
const COMPRESSIBLE = new Set([".html", ".js", ".css", ".json", ".svg", ".txt"]);
/** More entries than a build has files (old builds' entries are evicted first). */
const MAX_ENTRIES = 256;

/** Whether the request's Accept-Encoding takes gzip (over sending the file as it is). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  return new Negotiator({ headers: { "accept-encoding": acceptEncoding } }).encoding(["gzip", "identity"]) === "gzip";
}

export function isCompressible(extension: string): boolean {
  return COMPRESSIBLE.has(extension);
}

export interface GzippedFiles {
  /** The gzip of the file at `path` as it was at `mtimeMs` (compressed on first use). */
  file(path: string, mtimeMs: number): Promise<Buffer>;
  /** The gzip of a text built in memory (index.html with its live tag), by a key naming its version. */
  text(key: string, text: string): Promise<Buffer>;
}

export function createGzippedFiles(): GzippedFiles {
  const cache = new Map<string, Promise<Buffer>>();
  function remembered(key: string, make: () => Promise<Buffer>): Promise<Buffer> {
    let entry = cache.get(key);
    if (!entry) {
      if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
      entry = make();
      // A failed read is not kept: the next request tries again.
      entry.catch(() => cache.delete(key));
      cache.set(key, entry);
    }
    return entry;
  }
  return {
    file: (path, mtimeMs) => remembered(`${path}@${mtimeMs}`, async () => gzipAsync(await readFile(path))),
    text: (key, text) => remembered(key, () => gzipAsync(Buffer.from(text))),
  };
}
