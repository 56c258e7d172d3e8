-- Stores a USAGE_SPIKE alert unless the subscription already has one raised after p_since: at most
-- one per subscription per window (src/observability/alerts/alert-store.ts). One statement instead of
-- a transaction of five (BEGIN, the lock, the check, the insert, COMMIT): a burst of spikes (every
-- customer's first busy window) took a pool connection for five round trips each.
--
-- The lock is the one the transaction took, on the same key, so instances running either version
-- still store one alert. The check runs after the lock as a statement of its own: in a VOLATILE
-- PL/pgSQL function each statement takes a fresh snapshot, so it sees an alert another instance
-- committed while this one waited for the lock (a single "insert … where not exists" statement would
-- not: its snapshot is taken before the wait).
CREATE OR REPLACE FUNCTION credit_alert_spike_once(
  p_id uuid, p_subscription uuid, p_message text, p_details jsonb, p_created_at timestamptz, p_since timestamptz
) RETURNS SETOF credit_alerts
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('credit_alerts:USAGE_SPIKE:' || p_subscription::text));
  IF EXISTS (SELECT 1 FROM credit_alerts
              WHERE subscription_id = p_subscription AND kind = 'USAGE_SPIKE' AND created_at > p_since) THEN
    RETURN;
  END IF;
  RETURN QUERY
    INSERT INTO credit_alerts (id, subscription_id, kind, message, details, created_at)
    VALUES (p_id, p_subscription, 'USAGE_SPIKE', p_message, p_details, p_created_at)
    RETURNING *;
END;
$$;
