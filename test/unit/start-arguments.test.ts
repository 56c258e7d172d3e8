/** `npm start` takes no arguments: --help explains the environment variables, anything else is refused (an outside audit). */
import { describe, expect, it } from "vitest";
import { readStartArguments, START_USAGE } from "../../src/cli/start-arguments.js";

describe("npm start's arguments", () => {
  it("runs with none", () => {
    expect(readStartArguments([])).toEqual({ run: true });
  });

  it("prints the usage for --help and -h, and exits 0", () => {
    for (const flag of ["--help", "-h"]) expect(readStartArguments([flag])).toEqual({ run: false, exitCode: 0, output: START_USAGE });
    expect(START_USAGE).toMatch(/environment variables/);
  });

  it("refuses anything else with exit 2, naming what it got", () => {
    const refused = readStartArguments(["--port", "5000"]);
    expect(refused).toMatchObject({ run: false, exitCode: 2 });
    expect(refused.run === false && refused.output).toMatch(/^npm start takes no arguments \(got "--port" "5000"\): set environment variables instead/);
  });
});
