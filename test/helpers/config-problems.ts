/** What loadConfig says is wrong with a set of settings: its ConfigError's problems, or [] when it accepts them. */
import { ConfigError, loadConfig } from "../../src/config/config.js";

export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}
