/**
 * An error graphql-js raises itself during execution (a resolver that returned null for a non-null
 * field: our bug, not the client's) is masked for the client and, as
 * every unexpected error, logged at error with its detail (DESIGN.md, "Errors": "details only in the
 * log"). graphql-js wraps its own "Cannot return null" in a located error whose originalError is set,
 * so the errors plugin logs it; this guards that path.
 */
import { Mutation, Resolver } from "type-graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app/create-app.js";
import { loadConfig } from "../../src/config/config.js";
import { MASKED_MESSAGE } from "../../src/graphql/format-error.js";
import { createLogger } from "../../src/observability/logger.js";
import { postGraphQL } from "../helpers/test-app.js";
import { captureLogLines } from "../helpers/log-lines.js";

@Resolver()
class BrokenResolver {
  @Mutation(() => String, { description: "Test only: breaks its own schema's promise." })
  brokenNonNull(): string {
    return null as unknown as string;
  }
}

describe("an execution error graphql-js raises itself", () => {
  let app: App;
  let url: string;
  const captured = captureLogLines();
  const lines = captured.lines;

  beforeAll(async () => {
    const sink = captured.destination;
    const config = loadConfig({ NODE_ENV: "test", LOG_LEVEL: "info", PGLITE_DIR: "memory://" });
    app = await createApp(config, { logger: createLogger("info", sink), resolvers: [BrokenResolver] });
    url = await app.listen(0, "127.0.0.1");
  });
  afterAll(() => app?.close());

  it("is masked as a 500 with its requestId, and logged at error with graphql's message", async () => {
    const res = await postGraphQL(`${url}/graphql`, `mutation { brokenNonNull }`);
    expect(res.status).toBe(500);
    const [error] = res.body.errors!;
    expect(error.message).toBe(MASKED_MESSAGE);
    expect(error.extensions).toMatchObject({ code: "INTERNAL_SERVER_ERROR" });
    const requestId = error.extensions!.requestId;
    const logged = lines.filter((l) => l.level === 50 && l.requestId === requestId);
    expect(logged).toHaveLength(1);
    expect(JSON.stringify(logged[0])).toMatch(/Cannot return null for non-nullable field Mutation.brokenNonNull/);
  });
});
