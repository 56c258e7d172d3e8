/**
 * The plan of a new subscription, from the plans the server is configured with (`plans`): a select
 * of them, the first chosen by default, plus "other…" for a name the server does not know, with a
 * warning, since such a plan grants nothing (a typo would silently open a subscription without its
 * allowance).
 */
import { Fragment, useEffect, useState } from "react";
import { PlansDocument, type PlansQuery } from "../generated/graphql";
import { useQuery } from "../api/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { fmtCredits } from "../components/format";
import { UserText } from "../components/UserText";

const OTHER = "\u0000other";

type Plan = PlansQuery["plans"][number];

/** "1,000 credits (ai), 50 credits (leads) every 1mo": what a plan grants. */
function describe(plan: Plan): string {
  const grants = plan.allowances.map((a) => fmtCredits(a.amount, a.type)).join(", ");
  return grants ? `${grants} every ${plan.period}` : "grants nothing";
}

export function PlanPicker({ plan, onChange, problemId }: { plan: string; onChange: (plan: string) => void; /** The id of the message saying the plan is missing, when it is. */ problemId?: string }) {
  const { data, error, refetch } = useQuery(PlansDocument, {});
  const plans = data?.plans;
  // "Other…" picked: the name is typed, even when it happens to match a configured one.
  const [other, setOther] = useState(false);

  // The first configured plan is the default, once the server said which there are.
  useEffect(() => {
    if (plans && plans.length > 0 && plan === "") onChange(plans[0].name);
  }, [plans, plan, onChange]);

  if (error) return <ErrorBanner error={error} onRetry={() => void refetch()} />;
  if (!plans) return <span className="muted small">Loading plans…</span>;
  const known = plans.find((p) => p.name === plan.trim());
  const typing = other || plans.length === 0;
  return (
    <>
      {plans.length > 0 ? (
        <label>
          Plan
          <select
            value={typing ? OTHER : plan}
            onChange={(e) => {
              const picked = e.target.value;
              setOther(picked === OTHER);
              onChange(picked === OTHER ? "" : picked);
            }}
            data-testid="create-plan"
          >
            {plans.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}: {describe(p)}
              </option>
            ))}
            <option value={OTHER}>other…</option>
          </select>
        </label>
      ) : null}
      {typing ? (
        <label>
          {plans.length > 0 ? "Plan name" : "Plan"}
          <input
            value={plan}
            onChange={(e) => onChange(e.target.value)}
            required
            size={10}
            aria-invalid={problemId ? true : undefined}
            aria-describedby={problemId}
            data-testid="create-plan-name"
          />
        </label>
      ) : null}
      {typing && !known && plan.trim() ? (
        <div className="warn small field-problem" role="status" data-testid="create-plan-warning">
          “<UserText>{plan.trim()}</UserText>” is not one of this server's plans
          {plans.length > 0 ? (
            <>
              {" "}
              (
              {plans.map((p, i) => (
                <Fragment key={p.name}>
                  {i > 0 ? ", " : ""}
                  <UserText>{p.name}</UserText>
                </Fragment>
              ))}
              )
            </>
          ) : null}
          : the
          subscription would get no plan credits, only the starting credits below.
        </div>
      ) : null}
    </>
  );
}
