/** Durations are parsed by src/util/duration.ts (shared with the credits core, which imports no configuration). */
export { parseDurationMs } from "../util/duration.js";
