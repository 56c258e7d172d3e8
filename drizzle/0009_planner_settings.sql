-- PostgreSQL's JIT compiles a statement whose estimated cost passes jit_above_cost (100,000). The
-- hold statement (a recursive walk over a batch of requests) is estimated far above that while it
-- really touches a handful of rows, so every hold paid ~50 ms of LLVM compilation for ~0.2 ms of
-- work (measured: 57 ms per hold and post with JIT, 3 ms without). Turned off for this database's
-- new sessions; a setting on the database (not a SET per session) is what works through a
-- transaction-mode pooler. A role that may not alter the database (or a server without the setting) keeps the default, with a notice.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'graphql-credits: could not turn JIT off for database % (%): holds will be slower; run ALTER DATABASE ... SET jit = off', current_database(), SQLERRM;
END
$$;
