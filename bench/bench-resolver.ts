/**
 * Benchmark-only fields: the baselines `npm run bench` measures the charge path against, and the
 * full collection its soak measures memory after. Registered only in the server bench/bench-main.ts
 * starts (createApp({ resolvers: [BenchResolver] })); never part of the public or emitted schema.
 * No field is metered or rate-limited, and none needs a token.
 */
import { sql } from "drizzle-orm";
import { Arg, Ctx, Float, ID, Int, Mutation, Resolver } from "type-graphql";
import { queryRows } from "../src/db/database.js";
import { BadUserInputError, NotFoundError } from "../src/errors/errors.js";
import { isUuid } from "../src/util/uuid.js";
import type { RequestContext } from "../src/graphql/context.js";

@Resolver()
export class BenchResolver {
  @Mutation(() => Boolean, {
    description: "Benchmark only (bench/bench-main.ts): does nothing. The framework's ceiling: HTTP, context, parse, validate, execute.",
  })
  benchNoop(): boolean {
    return true;
  }

  @Mutation(() => Int, {
    description:
      "Benchmark only (bench/bench-main.ts): one bare `UPDATE … RETURNING` on a balance row through the server's pool, changing " +
      "nothing but its timestamp. The database round trip's ceiling. Returns the row's balance.",
  })
  async benchTouchBalance(
    @Arg("subscriptionId", () => ID, { description: "Subscription whose balance row is touched." }) subscriptionId: string,
    @Arg("creditType", () => String, { description: "Credit type of the balance row." }) creditType: string,
    @Ctx() ctx: RequestContext,
  ): Promise<number> {
    if (!isUuid(subscriptionId)) throw new BadUserInputError("subscriptionId must be a UUID", "subscriptionId");
    const rows = await queryRows<{ balance: number }>(
      ctx.services.db,
      sql`update credit_balances set balance = balance, updated_at = now()
           where subscription_id = ${subscriptionId}::uuid and credit_type = ${creditType}
          returning balance`,
    );
    if (rows.length === 0) throw new NotFoundError(`Subscription ${subscriptionId} has no ${creditType} balance`);
    return Number(rows[0].balance);
  }

  @Mutation(() => [Float], {
    description:
      "Benchmark only (bench/bench-main.ts, started with --expose-gc): runs full garbage collections and returns the V8 heap " +
      "after them, in bytes: [in use, committed]. The soak reads the server's memory after it, so garbage not yet collected is not counted as kept.",
  })
  benchCollectGarbage(): number[] {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error("benchCollectGarbage needs the server started with --expose-gc (bench/server.ts does)");
    // Twice: what the first collection's finalizers and weak callbacks let go is collected by the second.
    // (Node 20's gc() with an options object, e.g. { type: "major" }, left most garbage in place.)
    gc();
    gc();
    const { heapUsed, heapTotal } = process.memoryUsage();
    return [heapUsed, heapTotal];
  }
}
