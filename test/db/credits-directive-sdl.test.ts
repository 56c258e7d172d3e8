/**
 * The @credits directive on a schema written as SDL (not type-graphql): it validates at transform
 * time and wraps the field with the real charge path over a real database.
 */
import { buildSchema, execute, parse, type GraphQLSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChargeCollector } from "../../src/credits/charge-collector.js";
import { createChargeWrapper } from "../../src/credits/charge-wrapper.js";
import { composeObservers } from "../../src/credits/charge-observer.js";
import { CREDIT_TYPE_NAMES } from "../../src/credits/credit-types.js";
import { CREDITS_DIRECTIVE_SDL, CreditsDirectiveError, creditsDirectiveTransformer, readMeteredFields } from "../../src/credits/credits-directive.js";
import { ESTIMATORS } from "../../src/credits/estimators/registry.js";
import { buildBaseSchema } from "../../src/graphql/build-schema.js";
import { METERS } from "../../src/credits/meters/registry.js";
import { createCoalescingChargeLedger } from "../../src/ledger/coalescing-charge-ledger.js";
import { settleRequest, type ChargeDeps } from "../../src/credits/charge-phases.js";
import { auditLedger } from "../../src/ledger/audit.js";
import { createLoaders } from "../../src/graphql/loaders.js";
import type { RequestContext } from "../../src/graphql/context.js";
import { createLogger } from "../../src/observability/logger.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { fundedSubscription } from "../helpers/test-app.js";

const options = { creditTypes: CREDIT_TYPE_NAMES, estimators: ESTIMATORS, meters: METERS };

const sdl = (directive: string) => `
  ${CREDITS_DIRECTIVE_SDL}
  type Query { ok: Boolean }
  type Mutation { translate(subscriptionId: ID!, text: String!): String ${directive} }
`;

describe("@credits validation at schema build time", () => {
  it("reads a fixed price and an estimator", () => {
    expect(readMeteredFields(buildSchema(sdl('@credits(type: "ai", amount: 2)')), options)).toEqual([
      expect.objectContaining({ coordinate: "Mutation.translate", creditType: "ai", amount: 2, estimator: undefined }),
    ]);
    const [field] = readMeteredFields(buildSchema(sdl('@credits(type: "leads", estimator: "leads", amount: 3)')), options);
    expect(field.estimator?.name).toBe("leads");
    expect(field.amount).toBe(3);
  });

  it("reads a registered meter", () => {
    const [field] = readMeteredFields(buildSchema(sdl('@credits(type: "leads", estimator: "leads", meter: "leads")')), options);
    expect(field.meter?.name).toBe("leads");
  });

  it.each([
    ['@credits(type: "gold", amount: 1)', /Mutation\.translate: @credits type "gold" is not a known credit type/],
    ['@credits(type: "ai", estimator: "magic")', /Mutation\.translate: @credits estimator "magic" is not registered/],
    ['@credits(type: "ai")', /Mutation\.translate: @credits needs an amount or an estimator/],
    ['@credits(type: "ai", amount: 0)', /Mutation\.translate: @credits amount must be a whole number of at least 1/],
    ['@credits(type: "ai", amount: 1, meter: "odometer")', /Mutation\.translate: @credits meter "odometer" is not registered/],
  ])("refuses %s naming the field", (directive, message) => {
    const schema = buildSchema(sdl(directive));
    expect(() => readMeteredFields(schema, options)).toThrow(CreditsDirectiveError);
    expect(() => readMeteredFields(schema, options)).toThrow(message);
    const wrap = createChargeWrapper({} as never);
    expect(() => creditsDirectiveTransformer({ ...options, wrap })(schema)).toThrow(message);
  });

  // An outside audit: type-graphql puts a @Directive("…") string on a field unchecked (as an SDL
  // schema built with assumeValidSDL does): `@credit(…)` left the field free and open without a
  // token, missing from the catalog; `meters:` was dropped and the call paid its whole hold.
  it.each([
    ['@credit(type: "ai", amount: 1)', 'Mutation.translate: the directive @credit is not declared in the schema (did you mean @credits?)'],
    ['@credits(type: "leads", estimator: "leads", meters: "leads")', 'Mutation.translate: @credits has no argument "meters" (its arguments: type, amount, estimator, meter)'],
    ['@credits(type: "ai", estimater: "ai")', 'Mutation.translate: @credits has no argument "estimater" (its arguments: type, amount, estimator, meter)'],
  ])("refuses %s, which graphql itself did not check, naming the field", (directive, message) => {
    const schema = buildSchema(sdl(directive), { assumeValidSDL: true });
    expect(() => readMeteredFields(schema, options)).toThrow(message);
    const wrap = createChargeWrapper({} as never);
    expect(() => creditsDirectiveTransformer({ ...options, wrap })(schema)).toThrow(message);
  });

  it("refuses a metered field without a subscriptionId argument, unless the host names the subscription from its context", () => {
    // Found by an outside audit: such a field started, was listed in creditCatalog, and answered
    // every call 400 "needs a subscriptionId": it could never be called.
    const withoutArgument = buildSchema(`${CREDITS_DIRECTIVE_SDL}
      type Query { ok: Boolean }
      type Mutation { translate(text: String!): String @credits(type: "ai", amount: 1) }`);
    expect(() => readMeteredFields(withoutArgument, options)).toThrow(
      /Mutation\.translate: a field with @credits needs a subscriptionId argument \(ID!\)/,
    );
    expect(readMeteredFields(withoutArgument, { ...options, subscriptionFromContext: true })).toHaveLength(1);
    const wrongType = buildSchema(`${CREDITS_DIRECTIVE_SDL}
      type Query { ok: Boolean }
      type Mutation { translate(subscriptionId: Int!, text: String!): String @credits(type: "ai", amount: 1) }`);
    expect(() => readMeteredFields(wrongType, { ...options, subscriptionFromContext: true })).toThrow(/it has one of type Int/);
  });

  it("every @credits use of the server's own schema is valid as at start (what npm run schema:emit checks)", () => {
    expect(readMeteredFields(buildBaseSchema(), options).map((f) => f.coordinate)).toContain("Mutation.runAiTask");
  });
});

describe.each(BACKENDS)("@credits on an SDL schema on %s", (backend) => {
  let database: TestDatabase;
  let schema: GraphQLSchema;
  let subscriptionId: string;
  const resolved: string[] = [];
  let deps: ChargeDeps;

  beforeAll(async () => {
    database = await createTestDatabase(backend);
    subscriptionId = await fundedSubscription(database, "sdl-user", { ai: 5 });
    const base = buildSchema(sdl('@credits(type: "ai", amount: 2)'));
    base.getMutationType()!.getFields().translate.resolve = (_src, args) => {
      resolved.push(args.text);
      if (args.text === "explode") throw new Error("provider down");
      return `translated: ${args.text}`;
    };
    const observer = composeObservers([], () => undefined);
    deps = {
      ledger: createCoalescingChargeLedger(database.db),
      rateLimiter: { checkMetered: async () => undefined },
      observer,
    };
    const wrap = createChargeWrapper(deps);
    schema = creditsDirectiveTransformer({ ...options, wrap })(base);
  });
  afterAll(() => database?.dispose());

  function context(viewerId: string | undefined): RequestContext {
    return {
      requestId: "sdl-test",
      viewer: viewerId ? { id: viewerId, isAdmin: false } : undefined,
      authError: undefined,
      clientAddress: "127.0.0.1",
      loaders: createLoaders(database.db),
      charges: new ChargeCollector(),
      logger: createLogger("silent"),
      services: {} as never,
      idempotencyKey: undefined,
      simulateFailure: undefined,
    };
  }

  /** Executes, then settles as the server's plugin does once the result is known. */
  const run = async (text: string, ctx: RequestContext) => {
    const result = await execute({
      schema,
      document: parse(`mutation($s: ID!, $t: String!) { translate(subscriptionId: $s, text: $t) }`),
      variableValues: { s: subscriptionId, t: text },
      contextValue: ctx,
    });
    await settleRequest(deps, ctx, (path) => (result.data as Record<string, unknown> | null | undefined)?.[path[0]] != null);
    return result;
  };

  it("charges the fixed amount before the resolver runs and records it", async () => {
    const ctx = context("sdl-user");
    const result = await run("hello", ctx);
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({ translate: "translated: hello" });
    expect(ctx.charges.toExtension()).toMatchObject({
      charges: [{ path: ["translate"], operation: "Mutation.translate", type: "ai", charged: 2, remaining: 3, refunded: 0 }],
      remaining: { [subscriptionId]: { ai: 3 } },
    });
  });

  it("refunds a system error and charges nothing without a caller", async () => {
    const ctx = context("sdl-user");
    const failed = await run("explode", ctx);
    expect(failed.errors?.[0].message).toBe("provider down");
    expect(ctx.charges.toExtension()?.charges[0]).toMatchObject({ charged: 2, refunded: 2, remaining: 3 });

    const before = resolved.length;
    const anonymous = await run("sneaky", context(undefined));
    expect(anonymous.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
    expect(resolved.length).toBe(before);
    expect((await auditLedger(database.db)).ok).toBe(true);
  });
});
