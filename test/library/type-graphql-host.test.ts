/**
 * A type-graphql 2 host built as docs/library.md ("type-graphql") says, as an outside audit built one:
 * - transform refuses a schema it already transformed: transformed twice, a metered field inside a
 *   list was held once per wrapper (7 charges instead of 4);
 * - `@credits` (or `@rateLimit`) anywhere but a field of an object type (on the class, an input
 *   field, an argument, an interface, an enum value …) is refused at transform, naming the place:
 *   type-graphql does not check directive locations, and the field ran free; so is @credits on a
 *   field of the subscription type, which could never charge (HTTP held and refunded it, every
 *   graphql-ws event answered a masked 500);
 * - class-validator's argument validation (type-graphql's ArgumentValidationError, raised inside the
 *   resolver, after the hold) is refunded whole and answered 400; a BAD_USER_INPUT the resolver
 *   raises on purpose still costs its hold;
 * - @Authorized's denials (UNAUTHORIZED) answer 403 FORBIDDEN with their message, logged as a client
 *   error, and a metered field denied so is refunded as refused; UNAUTHENTICATED answers 401.
 */
import "reflect-metadata";
import { ApolloServer } from "@apollo/server";
import { Max } from "class-validator";
import { GraphQLError, buildSchema as buildSdlSchema, specifiedDirectives, type GraphQLSchema } from "graphql";
import {
  Arg,
  Authorized,
  Directive,
  Field,
  FieldResolver,
  ID,
  InputType,
  Int,
  Mutation,
  ObjectType,
  Query,
  Resolver,
  Root,
  buildSchema,
} from "type-graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, creditsDirective, rateLimitDirective, type Credits, type CreditsOptions } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";

interface Ctx {
  user?: string;
  role?: string;
  sub?: string;
}

interface Answer {
  status: number;
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions: Record<string, any> }[];
  extensions?: { credits?: any };
}

const DIRECTIVES = [...specifiedDirectives, creditsDirective, rateLimitDirective];

// ---------------------------------------------------------------------------------------------
// The host's classes (names prefixed, as type-graphql's metadata is one per process).

@ObjectType("TgReport")
class Report {
  @Field(() => String)
  name!: string;
}

@Resolver(() => Report)
class ReportResolver {
  @Query(() => [Report])
  @Directive('@credits(type: "ai", amount: 1)')
  reports(@Arg("subscriptionId", () => ID) _subscriptionId: string): Report[] {
    return [{ name: "a" }, { name: "b" }, { name: "c" }];
  }

  @FieldResolver(() => Int)
  @Directive('@credits(type: "ai", amount: 1)')
  price(@Root() report: Report): number {
    return report.name.length;
  }
}

@InputType("TgCompleteInput")
class CompleteInput {
  @Field(() => String)
  prompt!: string;

  @Field(() => Int)
  @Max(8192)
  maxTokens!: number;
}

@ObjectType("TgCompletion")
class Completion {
  @Field(() => String)
  text!: string;
}

@Resolver()
class CompleteResolver {
  @Query(() => String)
  hello(): string {
    return "hi";
  }

  @Mutation(() => Completion)
  @Directive('@credits(type: "ai", estimator: "promptSize")')
  complete(@Arg("subscriptionId", () => ID) _subscriptionId: string, @Arg("input", () => CompleteInput) input: CompleteInput): Completion {
    return { text: `echo: ${input.prompt}` };
  }

  @Mutation(() => String)
  @Directive('@credits(type: "ai", amount: 3)')
  rename(@Arg("subscriptionId", () => ID) _subscriptionId: string, @Arg("name", () => String) name: string): string {
    // A user-input error the resolver raises on purpose, after doing the work: the hold stands.
    if (name.trim() === "") throw new GraphQLError("name must not be blank", { extensions: { code: "BAD_USER_INPUT" } });
    return name;
  }

  @Query(() => String)
  @Authorized("admin")
  secret(): string {
    return "the secret";
  }

  @Query(() => String)
  @Authorized()
  signedIn(): string {
    return "signed in";
  }

  @Mutation(() => Int)
  @Authorized("admin")
  @Directive('@credits(type: "ai", amount: 2)')
  adminWork(@Arg("subscriptionId", () => ID) _subscriptionId: string): number {
    return 1;
  }
}

// The misplaced directives, each in a schema of its own (with a query: a schema needs one).

@Resolver()
class PingResolver {
  @Query(() => String)
  ping(): string {
    return "pong";
  }
}

@Directive('@credits(type: "ai", amount: 5)')
@ObjectType("TgPricedType")
class PricedType {
  @Field(() => String)
  name!: string;
}

@Resolver()
class PricedTypeResolver {
  @Query(() => PricedType)
  priced(@Arg("subscriptionId", () => ID) _subscriptionId: string): PricedType {
    return { name: "x" };
  }
}

@InputType("TgPricedInput")
class PricedInput {
  @Field(() => String)
  @Directive('@credits(type: "ai", amount: 5)')
  prompt!: string;
}

@Resolver()
class PricedInputResolver {
  @Mutation(() => String)
  pricedInput(@Arg("subscriptionId", () => ID) _subscriptionId: string, @Arg("input", () => PricedInput) input: PricedInput): string {
    return input.prompt;
  }
}

@Resolver()
class PricedArgumentResolver {
  @Mutation(() => String)
  pricedArgument(
    @Arg("subscriptionId", () => ID) _subscriptionId: string,
    @Arg("prompt", () => String) @Directive('@credits(type: "ai", amount: 5)') prompt: string,
  ): string {
    return prompt;
  }
}

// ---------------------------------------------------------------------------------------------

let database: TestDatabase;
beforeAll(async () => {
  database = await createPgliteDatabase();
}, 120_000);
afterAll(async () => {
  await database?.dispose();
});

const caller = (ctx: Ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined);

async function core(options: Partial<CreditsOptions<Ctx>> = {}) {
  const log = captureLogLines();
  const credits = await createCredits<Ctx>({
    database,
    creditTypes: ["ai"],
    caller,
    subscription: (ctx) => ctx.sub,
    // The estimator gets the field's arguments as GraphQL gives them: the input object under its name.
    estimators: { promptSize: ({ input }: { input: { prompt: string; maxTokens: number } }) => Math.ceil((input.prompt.length / 4 + input.maxTokens) / 1000) },
    recovery: false,
    rateLimit: false,
    logger: createLogger("info", log.destination),
    ...options,
  });
  return { credits, log: log.lines };
}

async function serve(credits: Credits<Ctx>, schema: GraphQLSchema) {
  const server = new ApolloServer<Ctx>({ schema, plugins: [credits.plugin], nodeEnv: "development" });
  await server.start();
  const sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { ai: 50 } })).id;
  async function run(query: string, context: Ctx = { user: "ann" }): Promise<Answer> {
    const response = await server.executeOperation({ query }, { contextValue: context });
    if (response.body.kind !== "single") throw new Error("expected a single result");
    return { status: response.http.status ?? 200, ...response.body.singleResult } as Answer;
  }
  return { server, sub, run };
}

const authChecker = ({ context }: { context: Ctx }, roles: string[]) => context.user !== undefined && roles.every((role) => context.role === role);

/**
 * type-graphql's buildSchema with the library's directives, as docs/library.md says. Every build
 * needs the authChecker: type-graphql checks for one whenever any class of the process uses @Authorized.
 */
const build = (resolvers: [Function, ...Function[]], validate = false) =>
  buildSchema({ resolvers, directives: DIRECTIVES, emitSchemaFile: false, validate, authChecker });

describe("credits.transform of a type-graphql schema", () => {
  it("refuses a schema it already transformed, and charges a list's metered items once each", async () => {
    const { credits } = await core();
    try {
      const once = credits.transform(await build([ReportResolver]));
      expect(() => credits.transform(once)).toThrow(/this schema was already transformed by credits\.transform: call it once/);
      // Another core refuses it too: its resolvers are wrapped already.
      const other = await core();
      try {
        expect(() => other.credits.transform(once)).toThrow(/already transformed by credits\.transform/);
      } finally {
        await other.credits.close();
      }

      const { server, sub, run } = await serve(credits, once);
      try {
        const res = await run(`{ reports(subscriptionId: "${sub}") { name price } }`, { user: "ann", sub });
        expect(res.errors).toBeUndefined();
        expect(res.data).toEqual({ reports: [{ name: "a", price: 1 }, { name: "b", price: 1 }, { name: "c", price: 1 }] });
        expect(res.extensions!.credits.charges).toHaveLength(4);
        expect(await credits.admin.balances(sub)).toEqual({ ai: 46 });
      } finally {
        await server.stop();
      }
    } finally {
      await credits.close();
    }
  }, 120_000);

  it("refuses @credits on a type, an input field or an argument, naming the place", async () => {
    const { credits } = await core();
    try {
      const cases: [Function, RegExp][] = [
        [PricedTypeResolver, /@credits on the type TgPricedType: put it on a field \(a mutation, a query, or a field of an object type\)/],
        [PricedInputResolver, /@credits on the input field TgPricedInput\.prompt: put it on a field/],
        [PricedArgumentResolver, /@credits on the argument Mutation\.pricedArgument\(prompt:\): put it on a field/],
      ];
      for (const [resolver, message] of cases) {
        const schema = await build([PingResolver, resolver]);
        expect(() => credits.transform(schema)).toThrow(message);
      }
    } finally {
      await credits.close();
    }
  }, 120_000);

  it("refuses a schema built without the library's directives, saying how to declare them", async () => {
    const { credits } = await core();
    try {
      const undeclared = await buildSchema({ resolvers: [ReportResolver], emitSchemaFile: false, authChecker });
      expect(() => credits.transform(undeclared)).toThrow(
        /Query\.reports: the directive @credits is not declared in the schema: declare it, .*buildSchema\(\{ directives: \[\.\.\.specifiedDirectives, creditsDirective, rateLimitDirective\]/,
      );
    } finally {
      await credits.close();
    }
  }, 120_000);

  it("refuses @credits and @rateLimit wherever graphql would, and @credits on an interface's field or a subscription field, in an SDL schema built without validation", async () => {
    const { credits } = await core();
    try {
      const credit = '@credits(type: "ai", amount: 5)';
      const cases: [string, RegExp][] = [
        [`interface Node ${credit} { id: ID }`, /@credits on the type Node: put it on a field/],
        [`interface Node { id: ID ${credit} }`, /@credits on the field Node\.id of an interface: put it on that field of each object type that implements Node/],
        [`enum Color { RED ${credit} }`, /@credits on the enum value Color\.RED: put it on a field/],
        [`enum Color ${credit} { RED }`, /@credits on the type Color/],
        [`scalar Money ${credit}`, /@credits on the type Money/],
        [`union Thing ${credit} = Item`, /@credits on the type Thing/],
        [`extend type Item ${credit}`, /@credits on the type Item/],
        [`input Ask { prompt: String @rateLimit(max: 1, window: "1m") }`, /@rateLimit on the input field Ask\.prompt: put it on a field/],
        [`extend schema ${credit}`, /@credits on the schema: put it on a field/],
        // A subscription field's resolver runs once per event, outside any operation that holds and settles.
        [
          `type Subscription { tick(subscriptionId: ID!): Int ${credit} }`,
          /@credits on Subscription\.tick: subscription fields cannot be metered; meter the mutation or query that does the work/,
        ],
        [`schema { query: Query, subscription: Feed } type Feed { tick(subscriptionId: ID!): Int ${credit} }`, /@credits on Feed\.tick: subscription fields cannot be metered/],
      ];
      for (const [extra, message] of cases) {
        const sdl = `${credits.typeDefs}
          type Item { name: String }
          type Query { item(subscriptionId: ID!): Item }
          ${extra}`;
        expect(() => credits.transform(buildSdlSchema(sdl, { assumeValidSDL: true })), extra).toThrow(message);
      }
      // @rateLimit on a subscription field is the host's business, as anywhere its declaration allows.
      const limited = `${credits.typeDefs}
        type Query { hello: String }
        type Subscription { tick: Int @rateLimit(max: 1, window: "1m") }`;
      expect(() => credits.transform(buildSdlSchema(limited))).not.toThrow();
    } finally {
      await credits.close();
    }
  }, 120_000);
});

describe("class-validator's argument validation on a metered type-graphql field", () => {
  let credits: Credits<Ctx>;
  let log: Record<string, any>[];
  let host: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    ({ credits, log } = await core());
    const schema = await build([CompleteResolver], true);
    host = await serve(credits, credits.transform(schema));
  }, 120_000);
  afterAll(async () => {
    await host?.server.stop();
    await credits?.close();
  });

  const refunds = () => log.filter((l) => l.event === "credits.refunded");
  const errorsOf = (res: Answer) => log.filter((l) => l.level >= 50 && l.requestId === res.errors![0].extensions.requestId);

  it("is refunded whole (the resolver did not run) and answered 400 BAD_USER_INPUT", async () => {
    const res = await host.run(`mutation { complete(subscriptionId: "${host.sub}", input: { prompt: "hi", maxTokens: 9000 }) { text } }`);
    expect(res.status).toBe(400);
    expect(res.errors![0]).toMatchObject({ message: "Argument Validation Error", extensions: { code: "BAD_USER_INPUT", validationErrors: expect.any(Array) } });
    expect(res.extensions!.credits.charges[0]).toMatchObject({ charged: 10, refunded: 10, cost: 0, remaining: 50 });
    expect(await credits.admin.balances(host.sub)).toEqual({ ai: 50 });
    expect(refunds().at(-1)).toMatchObject({ operation: "Mutation.complete", refunded: 10, reason: "invalid arguments: the resolver did not run" });
    expect(refunds().at(-1)!.error).toBeUndefined();
    // Valid, it runs and costs its estimate.
    const ok = await host.run(`mutation { complete(subscriptionId: "${host.sub}", input: { prompt: "hi", maxTokens: 1000 }) { text } }`);
    expect(ok.data).toEqual({ complete: { text: "echo: hi" } });
    expect(await credits.admin.balances(host.sub)).toEqual({ ai: 48 });
  });

  it("the same error thrown as type-graphql throws it, without class-validator, is refunded too", async () => {
    // Structural: a BAD_USER_INPUT GraphQLError with an extensions.validationErrors array.
    const { credits: own } = await core();
    try {
      const schema = own.transform(
        buildSdlSchema(`${own.typeDefs}
          type Query { hello: String }
          type Mutation { ask(subscriptionId: ID!, n: Int!): Int @credits(type: "ai", amount: 4) }`),
        {
          Mutation: {
            ask: () => {
              throw new GraphQLError("Argument Validation Error", {
                extensions: { code: "BAD_USER_INPUT", validationErrors: [{ property: "n", constraints: { max: "n must not be greater than 8" } }] },
              });
            },
          },
        },
      );
      const { server, sub, run } = await serve(own, schema);
      try {
        const res = await run(`mutation { ask(subscriptionId: "${sub}", n: 9) }`);
        expect(res.status).toBe(400);
        expect(res.extensions!.credits.charges[0]).toMatchObject({ charged: 4, refunded: 4, cost: 0 });
        expect(await own.admin.balances(sub)).toEqual({ ai: 50 });
      } finally {
        await server.stop();
      }
    } finally {
      await own.close();
    }
  }, 120_000);

  it("an ordinary BAD_USER_INPUT the resolver raises on purpose still costs the hold", async () => {
    const before = (await credits.admin.balances(host.sub)).ai;
    const res = await host.run(`mutation { rename(subscriptionId: "${host.sub}", name: " ") }`);
    expect(res.status).toBe(400);
    expect(res.errors![0]).toMatchObject({ message: "name must not be blank", extensions: { code: "BAD_USER_INPUT" } });
    expect(res.extensions!.credits.charges[0]).toMatchObject({ charged: 3, cost: 3 });
    expect(await credits.admin.balances(host.sub)).toEqual({ ai: before - 3 });
  });

  it("@Authorized's denial answers 403 FORBIDDEN with its message, logged as a client error, on an unmetered field", async () => {
    const res = await host.run(`{ secret }`, { user: "ann", role: "user" });
    expect(res.status).toBe(403);
    expect(res.errors![0]).toMatchObject({ message: "Access denied! You don't have permission for this action!", extensions: { code: "FORBIDDEN" } });
    expect(errorsOf(res)).toEqual([]);
    expect(log.find((l) => l.msg === "client error" && l.requestId === res.errors![0].extensions.requestId)).toMatchObject({ reason: "FORBIDDEN" });
    expect((await host.run(`{ secret }`, { user: "ann", role: "admin" })).data).toEqual({ secret: "the secret" });
  });

  it("@Authorized's denial of a metered field is refunded as refused, not as a system error", async () => {
    const before = (await credits.admin.balances(host.sub)).ai;
    const res = await host.run(`mutation { adminWork(subscriptionId: "${host.sub}") }`, { user: "ann", role: "user" });
    expect(res.status).toBe(403);
    expect(res.errors![0]).toMatchObject({ message: "Access denied! You don't have permission for this action!", extensions: { code: "FORBIDDEN" } });
    expect(res.extensions!.credits.charges[0]).toMatchObject({ charged: 2, refunded: 2, cost: 0 });
    expect(await credits.admin.balances(host.sub)).toEqual({ ai: before });
    expect(refunds().at(-1)).toMatchObject({ operation: "Mutation.adminWork", reason: "refused: FORBIDDEN" });
    expect(refunds().at(-1)!.error).toBeUndefined();
    expect(errorsOf(res)).toEqual([]);
  });

  it("type-graphql's AuthenticationError answers 401 UNAUTHENTICATED through the plugin", async () => {
    const res = await host.run(`{ signedIn }`, {});
    expect(res.status).toBe(401);
    expect(res.errors![0]).toMatchObject({ message: "Access denied! You need to be authenticated to perform this action!", extensions: { code: "UNAUTHENTICATED" } });
    expect(errorsOf(res)).toEqual([]);
  });
});
